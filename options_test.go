package wxacode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDefaultHTTPClientIsPrivate(t *testing.T) {
	a, b := NewClient(StaticToken("x")), NewClient(StaticToken("x"))
	if a.opts.httpClient == http.DefaultClient || a.opts.httpClient.Transport == http.DefaultTransport {
		t.Error("default client uses net/http's shared client or transport")
	}
	if a.opts.httpClient == b.opts.httpClient {
		t.Error("two clients share one http.Client")
	}
	if a.opts.httpClient.Timeout <= 0 {
		t.Error("default client has no timeout")
	}
	own := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	got := NewClient(StaticToken("x"), WithHTTPClient(own)).opts.httpClient
	if got.Transport != own.Transport || got.Timeout != own.Timeout {
		t.Error("WithHTTPClient ignored")
	}
	if own.CheckRedirect != nil {
		t.Error("WithHTTPClient changed the caller's client")
	}
}

// TestRedirectsAreNeverFollowed: a 3xx from the API host, for the code or
// the token, comes back as a *ResponseError with its status, is not
// retried, and the other host receives nothing, whatever HTTP client is used.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, tokenJSON("stolen", 7200))
	}))
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, custom := range []bool{false, true} {
			for _, target := range []string{"code", "token"} {
				name := fmt.Sprintf("%d %s custom-client=%v", status, target, custom)
				t.Run(name, func(t *testing.T) {
					var calls atomic.Int64
					api := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						calls.Add(1)
						http.Redirect(w, r, other.URL+r.URL.RequestURI(), status)
					}))
					var opts []Option
					own := &http.Client{}
					if custom {
						opts = append(opts, WithHTTPClient(own))
					}
					opts = append(opts, WithBaseURL(api.URL), fastRetries())
					var err error
					if target == "code" {
						_, err = NewClient(StaticToken(testToken), opts...).GetUnlimited(context.Background(), Request{Scene: "a=1"})
					} else {
						_, err = NewStableTokenSource(testAppID, testSecret, opts...).Token(context.Background())
					}
					var respErr *ResponseError
					if !errors.As(err, &respErr) || respErr.StatusCode != status {
						t.Fatalf("err = %v, want a *ResponseError with status %d", err, status)
					}
					if got := calls.Load(); got != 1 {
						t.Errorf("API host called %d times, want 1 (a redirect is not retried)", got)
					}
					if got := elsewhere.Load(); got != 0 {
						t.Errorf("the other host received %d requests", got)
					}
					if own.CheckRedirect != nil {
						t.Error("the caller's http.Client was changed")
					}
					assertClean(t, err, "", testToken, testSecret)
				})
			}
		}
	}
}

func TestBaseURLMustBeHTTP(t *testing.T) {
	for _, base := range []string{"ftp://api.weixin.qq.com", "unix:///var/run/wx.sock", "api.weixin.qq.com", "file:///etc/passwd", "http://", "http://host/?a=1"} {
		t.Run(base, func(t *testing.T) {
			var requests int
			ts := TokenFunc(func(context.Context) (string, error) { requests++; return "t", nil })
			for name, c := range map[string]*Client{"cloud run": NewCloudRunClient(WithBaseURL(base)), "token": NewClient(ts, WithBaseURL(base))} {
				_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
				if err == nil || !strings.Contains(err.Error(), "base URL") {
					t.Errorf("%s client: err = %v, want a base URL error", name, err)
				}
			}
			if _, err := NewStableTokenSource("a", "b", WithBaseURL(base)).Token(context.Background()); err == nil {
				t.Error("StableTokenSource accepted the base URL")
			}
			if requests != 0 {
				t.Errorf("token fetched %d times for an unusable base URL", requests)
			}
		})
	}
}
