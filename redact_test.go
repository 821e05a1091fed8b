package wxacode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// awkwardToken holds every character a token may hold that URL-escaping
// changes.
const awkwardToken = "tok+en/with=pct%41-0123456789abcdef"

// credentialForms are the ways a credential can be echoed back.
func credentialForms(c string) []string {
	lowerHex := regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(url.QueryEscape(c), strings.ToLower)
	return []string{c, url.QueryEscape(c), url.PathEscape(c), lowerHex}
}

// assertClean fails if any form of any credential shows in what err
// prints (%v, %+v, %#v), in the fields of the typed errors in its chain, or
// in logs.
func assertClean(t *testing.T, err error, logs string, creds ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	var shown []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		shown = append(shown, fmt.Sprintf(verb, err))
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		shown = append(shown, apiErr.Message, apiErr.RequestID(), fmt.Sprintf("%#v", *apiErr))
	}
	var respErr *ResponseError
	if errors.As(err, &respErr) {
		shown = append(shown, fmt.Sprintf("%#v", *respErr), string(respErr.Body))
	}
	var tokErr *TokenError
	if errors.As(err, &tokErr) {
		shown = append(shown, fmt.Sprintf("%#v", tokErr.Err), tokErr.Err.Error())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		shown = append(shown, ue.URL, fmt.Sprintf("%#v", *ue))
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		shown = append(shown, fmt.Sprintf("%#v", e), e.Error())
	}
	shown = append(shown, logs)
	for _, c := range creds {
		for _, form := range credentialForms(c) {
			for _, s := range shown {
				if strings.Contains(s, form) {
					t.Errorf("credential form %q shows in %q", form, s)
				}
			}
		}
	}
}

// echoHandler answers every call with errcode code and an errmsg that
// echoes, in several forms, what the request carried: the query, the token
// value, and secrets the test names.
func echoHandler(code int, echo ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var msg strings.Builder
		msg.WriteString("bad request " + r.URL.RawQuery)
		for _, v := range r.URL.Query() {
			for _, s := range v {
				msg.WriteString(" raw=" + s + " escaped " + url.QueryEscape(s))
			}
		}
		for _, e := range echo {
			for _, form := range credentialForms(e) {
				msg.WriteString(" also " + form)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		body, _ := json.Marshal(msg.String())
		fmt.Fprintf(w, `{"errcode":%d,"errmsg":%s}`, code, body)
	}
}

func debugLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// TestRedactionEverywhere: a service that echoes credentials in errmsg, in
// every form, never gets one into an error, its fields or a log record.
func TestRedactionEverywhere(t *testing.T) {
	t.Run("access token in errmsg, retried and logged", func(t *testing.T) {
		logger, logs := debugLogger()
		c, _ := setup(t, StaticToken(awkwardToken), echoHandler(-1, awkwardToken), WithLogger(logger), WithMaxAttempts(2))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		if !errors.Is(err, &APIError{Code: -1}) {
			t.Fatalf("err = %v, want errcode -1", err)
		}
		assertClean(t, err, logs.String(), awkwardToken)
		if !strings.Contains(logs.String(), "retrying") {
			t.Errorf("no retry logged: %s", logs)
		}
	})
	t.Run("AppSecret echoed by the API host", func(t *testing.T) {
		logger, logs := debugLogger()
		mux := http.NewServeMux()
		mux.HandleFunc("POST /cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, tokenJSON(awkwardToken, 7200))
		})
		mux.HandleFunc("POST /wxa/getwxacodeunlimit", echoHandler(40097, testSecret))
		srv := newTestServer(t, mux)
		ts := NewStableTokenSource(testAppID, testSecret, WithBaseURL(srv.URL))
		c := NewClient(ts, WithBaseURL(srv.URL), WithLogger(logger))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		assertClean(t, err, logs.String(), awkwardToken, testSecret)
	})
	t.Run("AppSecret echoed by the token endpoint", func(t *testing.T) {
		logger, logs := debugLogger()
		srv := newTestServer(t, echoHandler(40125, testSecret))
		ts := NewStableTokenSource(testAppID, testSecret, WithBaseURL(srv.URL), WithLogger(logger))
		c := NewClient(ts, WithBaseURL(srv.URL), WithLogger(logger))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		var tokErr *TokenError
		if !errors.As(err, &tokErr) || !errors.Is(err, &APIError{Code: 40125}) {
			t.Fatalf("err = %v, want a *TokenError with errcode 40125", err)
		}
		assertClean(t, err, logs.String(), testSecret)
	})
	t.Run("cloudbase token", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, []byte(awkwardToken), 0o600); err != nil {
			t.Fatal(err)
		}
		c, _ := setup(t, NewCloudbaseTokenSource(path), echoHandler(40097))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		assertClean(t, err, "", awkwardToken)
	})
	t.Run("a TokenParamNamer's parameter, short token", func(t *testing.T) {
		c, _ := setup(t, namedParamSource{"tk", "a"}, echoHandler(40097))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		if !strings.Contains(err.Error(), "tk=REDACTED") || strings.Contains(err.Error(), "tk=a") {
			t.Errorf("err = %v, want tk=REDACTED", err)
		}
	})
	t.Run("errmsg object with JSON escapes", func(t *testing.T) {
		// PHP writes "/" as "\/"; others write "+" as "\u002b": the
		// token must be found through them.
		escaped := strings.NewReplacer("/", `\/`, "+", `\u002b`).Replace(awkwardToken)
		for _, msg := range []string{
			`{"detail":"token ` + escaped + ` rejected","rid":"r1"}`,
			`["token", "` + escaped + `"]`,
			`{"a":{"access_token":"` + escaped + `"}}`,
		} {
			logger, logs := debugLogger()
			c, _ := setup(t, StaticToken(awkwardToken), func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"errcode":40097,"errmsg":%s}`, msg)
			}, WithLogger(logger))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			if !errors.Is(err, &APIError{Code: 40097}) {
				t.Fatalf("err = %v, want errcode 40097", err)
			}
			assertClean(t, err, logs.String(), awkwardToken)
			assertClean(t, err, logs.String(), escaped)
		}
	})
	t.Run("an HTML page echoing the token, cut inside it", func(t *testing.T) {
		for _, cut := range []int{0, 3, 6, 10, len(awkwardToken) - 1} {
			// The token starts so that the first 512 bytes end cut bytes into it.
			page := strings.Repeat("x", 512-cut) + awkwardToken + " and " + url.QueryEscape(awkwardToken)
			c, _ := setup(t, StaticToken(awkwardToken), func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				_, _ = io.WriteString(w, page)
			}, WithMaxAttempts(1))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			assertClean(t, err, "", awkwardToken)
			var respErr *ResponseError
			if errors.As(err, &respErr) && cut >= minCutCredential && strings.Contains(string(respErr.Body), awkwardToken[:cut]) {
				t.Errorf("cut %d: Body ends with the token's first bytes: %q", cut, respErr.Body[len(respErr.Body)-20:])
			}
		}
	})
	t.Run("a transport error that prints the URL", func(t *testing.T) {
		hc := &http.Client{Transport: failingTransport{}}
		c := NewClient(StaticToken(awkwardToken), WithHTTPClient(hc), WithMaxAttempts(1))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		assertClean(t, err, "", awkwardToken)
		if !errors.Is(err, errFailingTransport) {
			t.Errorf("err = %v: the transport's sentinel is lost", err)
		}
	})
}

// TestShortTokenKeepsMessagesReadable: a one-letter test token is redacted
// only where it stands as a parameter value, never inside words.
func TestShortTokenKeepsMessagesReadable(t *testing.T) {
	c, _ := setup(t, StaticToken("a"), func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, CodeInvalidPage, "invalid page")
	})
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	if want := "wxacode: errcode 41030: invalid page"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestRedactorLongestFirst(t *testing.T) {
	// The token is a prefix of the secret: the whole secret must go.
	r := newRedactor("", "TOKEN-1234567", "TOKEN-1234567-and-the-secret-rest")
	if got := r.text("x TOKEN-1234567-and-the-secret-rest y"); got != "x REDACTED y" {
		t.Errorf("text = %q, want the whole secret redacted", got)
	}
}

func TestRedactorText(t *testing.T) {
	r := newRedactor("tk", "LONGSECRET+/=1", "a")
	tests := []struct{ in, want string }{
		{"invalid page", "invalid page"},
		{"https://h/p?access_token=a&x=1", "https://h/p?access_token=REDACTED&x=1"},
		{`{"secret":"a","appid":"wx"}`, `{"secret":"REDACTED","appid":"wx"}`},
		{"tk=abc tk2=keep my_secret=keep", "tk=REDACTED tk2=keep my_secret=keep"},
		{"echo LONGSECRET+/=1 and LONGSECRET%2B%2F%3D1 and LONGSECRET%2b%2f%3d1", "echo REDACTED and REDACTED and REDACTED"},
		{"cloudbase_access_token=xyz", "cloudbase_access_token=REDACTED"},
		{"appsecret=s3cr3t&secret=x", "appsecret=REDACTED&secret=REDACTED"},
	}
	for _, tc := range tests {
		if got := r.text(tc.in); got != tc.want {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// namedParamSource sends token in the query parameter param.
type namedParamSource struct{ param, token string }

func (s namedParamSource) Token(context.Context) (string, error) { return s.token, nil }
func (s namedParamSource) TokenParamName() string                { return s.param }

var errFailingTransport = errors.New("transport refused")

// failingTransport fails every request with an error that prints the URL,
// as some transports and middlewares do.
type failingTransport struct{}

func (failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("cannot reach %s: %w", r.URL, errFailingTransport)
}

func TestNoCredentialInErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name string
		base string
		h    http.HandlerFunc
	}{
		{"closed port", closedURL, nil},
		{"errmsg echoes the token", "", func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, 40097, "invalid args: access_token="+r.URL.Query().Get("access_token"))
		}},
		{"connection cut", "", func(w http.ResponseWriter, r *http.Request) { hangUp(t, w) }},
		{"bad base URL", "http://exa mple.com", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.base
			if tc.h != nil {
				srv := httptest.NewServer(tc.h)
				t.Cleanup(srv.Close)
				base = srv.URL
			}
			c := NewClient(StaticToken(testToken), WithBaseURL(base), WithMaxAttempts(2), fastRetries())
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error holds the token: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "wxacode: ") && !strings.Contains(err.Error(), "REDACTED") {
				t.Errorf("error is neither ours nor redacted: %v", err)
			}
			var ue *url.Error
			if errors.As(err, &ue) && strings.Contains(ue.URL, testToken) {
				t.Errorf("wrapped *url.Error URL holds the token: %s", ue.URL)
			}
		})
	}
}

func TestTransportErrorKeepsURLWithoutToken(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	c := NewClient(StaticToken(testToken), WithBaseURL(closed.URL), WithMaxAttempts(1))
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a *url.Error in the chain", err)
	}
	if want := closed.URL + "/wxa/getwxacodeunlimit?access_token=REDACTED"; ue.URL != want {
		t.Errorf("URL = %q, want %q", ue.URL, want)
	}
}
