package wxacode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

func newFake(t *testing.T, opts ...wxacodetest.ServerOption) *wxacodetest.Server {
	t.Helper()
	srv := wxacodetest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

func queryKeys(t *testing.T, raw string) string {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func TestCloudRunOpenAPIWireFormat(t *testing.T) {
	tests := []struct {
		name      string
		opts      []Option
		wantQuery string
	}{
		{"no token at all", nil, ""},
		{"from_appid", []Option{WithFromAppID("wx_other_account")}, "from_appid=wx_other_account"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, wxacodetest.WithOpenAPIService())
			c := NewCloudRunClient(append([]Option{WithBaseURL(srv.URL)}, tc.opts...)...)
			img, err := c.GetUnlimited(context.Background(), Request{Scene: "id=1"})
			if err != nil {
				t.Fatal(err)
			}
			if scene, _ := wxacodetest.ReadScene(img); scene != "id=1" {
				t.Errorf("scene = %q, want id=1", scene)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %d, want 1", len(reqs))
			}
			if reqs[0].Query != tc.wantQuery {
				t.Errorf("query = %q, want %q", reqs[0].Query, tc.wantQuery)
			}
		})
	}
}

func TestCloudRunDefaults(t *testing.T) {
	var sentTo string
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sentTo = r.URL.String()
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"image/jpeg"}}, Body: io.NopCloser(bytes.NewReader(testJPEG(t))), Request: r}, nil
	})}
	c := NewCloudRunClient(WithHTTPClient(hc))
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatal(err)
	}
	if want := "http://api.weixin.qq.com/wxa/getwxacodeunlimit"; sentTo != want {
		t.Errorf("sent to %q, want %q", sentTo, want)
	}
	if c.opts.baseErr != nil {
		t.Errorf("default base URL refused: %v", c.opts.baseErr)
	}
}

func TestCloudRunRetriesTokenNotReady(t *testing.T) {
	srv := newFake(t, wxacodetest.WithOpenAPIService())
	srv.FailNext(2, CodeCloudTokenNotReady)
	c := NewCloudRunClient(WithBaseURL(srv.URL), fastRetries())
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatalf("err = %v, want success after 85113 twice", err)
	}
	if got := len(srv.Requests()); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

func TestCloudRunGuidance(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the base URL
		code  int
		want  []string
	}{
		{"41001: open-API service not enabled", func(t *testing.T) string {
			return newFake(t).URL // a fake without WithOpenAPIService answers 41001 to calls without a token
		}, CodeAccessTokenMissing, []string{"enable the open-API service", "redeploy"}},
		{"85107: not whitelisted", func(t *testing.T) string {
			srv := newFake(t, wxacodetest.WithOpenAPIService())
			srv.FailNext(1, CodeNotInWhitelist)
			return srv.URL
		}, CodeNotInWhitelist, []string{"whitelist", "/wxa/getwxacodeunlimit", "redeploy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCloudRunClient(WithBaseURL(tc.setup(t)))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tc.code {
				t.Fatalf("err = %v, want errcode %d", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("502 when not whitelisted", func(t *testing.T) {
		c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
		cc := NewCloudRunClient(WithBaseURL(c.opts.baseURL), WithMaxAttempts(1))
		_, err := cc.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		if err == nil || !strings.Contains(err.Error(), "whitelist") {
			t.Errorf("err = %v, want a hint about the whitelist", err)
		}
	})
	t.Run("41001 outside Cloud Run says no token was sent first", func(t *testing.T) {
		srv := newFake(t)
		c := NewClient(StaticToken(""), WithBaseURL(srv.URL))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		var apiErr *APIError
		if !errors.As(err, &apiErr) || !strings.HasPrefix(apiErr.Hint(), "no access_token was sent") {
			t.Errorf("err = %v, want 41001 whose hint starts with the general cause", err)
		}
	})
}

// roundTripFunc adapts a function to an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// writeToken writes the Cloud Run token file.
func writeToken(t *testing.T, path, token string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// settled dates the file back two seconds, as one the platform finished
// writing a while ago: a file changed within the last second may be being
// written, and its token does not replace the one in service.
func settled(t *testing.T, path string) {
	t.Helper()
	past := time.Now().Add(-2 * time.Second)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
}

func TestCloudbaseToken(t *testing.T) {
	srv := newFake(t, wxacodetest.WithCloudbaseTokens())
	path := filepath.Join(t.TempDir(), "cloudbase_access_token")
	first := srv.Token()
	writeToken(t, path, first)
	ts := NewCloudbaseTokenSource(path)
	clock := newFakeClock()
	ts.now = clock.Now
	c := NewClient(ts, WithBaseURL(srv.URL), WithFromAppID("wx_reuse"))

	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if got := queryKeys(t, r.Query); got != "cloudbase_access_token,from_appid" {
		t.Errorf("query parameters = %s, want cloudbase_access_token,from_appid", got)
	}
	if r.Token != first || r.FromAppID != "wx_reuse" {
		t.Errorf("sent token %q from_appid %q", r.Token, r.FromAppID)
	}

	// The platform rotates the file: picked up once the recheck interval
	// has passed.
	srv.ExpireTokens()
	second := srv.Token()
	writeToken(t, path, second+"  ")
	settled(t, path) // written a while ago: not being written still
	clock.Advance(2 * time.Second)
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=2"}); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if got := srv.Requests()[1].Token; got != second {
		t.Errorf("sent %q after rotation, want the new token", got)
	}

	// Rotated again and used at once: the rejection makes the source read
	// the file again.
	srv.ExpireTokens()
	third := srv.Token()
	writeToken(t, path, third)
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=3"}); err != nil {
		t.Fatalf("after rotation and rejection: %v", err)
	}
	reqs := srv.Requests()
	if last := reqs[len(reqs)-1]; last.Token != third || last.ErrCode != 0 {
		t.Errorf("last call sent %q (errcode %d), want the third token", last.Token, last.ErrCode)
	}
}

func TestCloudbaseTokenFileProblems(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeToken(t, empty, "  ")
	huge := filepath.Join(dir, "huge")
	writeToken(t, huge, strings.Repeat("A", 5000))
	bomOnly := filepath.Join(dir, "bom")
	writeToken(t, bomOnly, "\ufeff")
	tests := []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"empty", empty, "is empty"},
		{"over 4 KiB", huge, "over 4096 bytes"},
		{"only a byte order mark", bomOnly, "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, wxacodetest.WithCloudbaseTokens())
			c := NewClient(NewCloudbaseTokenSource(tc.path), WithBaseURL(srv.URL))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			var te *TokenError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a *TokenError saying %q", err, tc.want)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests sent without a token", n)
			}
		})
	}
	if got := NewCloudbaseTokenSource("").path; got != DefaultCloudbaseTokenPath {
		t.Errorf("default path = %q", got)
	}
}

// TestCloudbaseTokenWhileRewritten: while the platform rewrites the file
// (missing or empty for a moment), the token read before is served until
// the API rejects it; a byte order mark is not part of the token.
func TestCloudbaseTokenWhileRewritten(t *testing.T) {
	srv := newFake(t, wxacodetest.WithCloudbaseTokens())
	path := filepath.Join(t.TempDir(), "cloudbase_access_token")
	tok := srv.Token()
	writeToken(t, path, "\ufeff"+tok)
	ts := NewCloudbaseTokenSource(path)
	clock := newFakeClock()
	ts.now = clock.Now
	c := NewClient(ts, WithBaseURL(srv.URL))
	call := func(step string) {
		t.Helper()
		if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		reqs := srv.Requests()
		if got := reqs[len(reqs)-1].Token; got != tok {
			t.Fatalf("%s: sent token %q, want %q", step, got, tok)
		}
	}
	call("with a byte order mark")
	for _, rewrite := range []func(){
		func() { _ = os.Remove(path) },
		func() { writeToken(t, path, "") },
		func() { writeToken(t, path, strings.Repeat("x", 5000)) },
	} {
		rewrite()
		clock.Advance(2 * time.Second)
		call("while the file is rewritten")
	}
	// Rejected, with nothing else in the file: an error, and no request.
	writeToken(t, path, "")
	ts.InvalidateToken(tok)
	calls := len(srv.Requests())
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("after the token was rejected, with an empty file: err = %v, want the file's problem", err)
	}
	if got := len(srv.Requests()) - calls; got != 0 {
		t.Errorf("%d requests sent without a token", got)
	}
}

func TestCloudbaseTokenNeverInErrors(t *testing.T) {
	const secretToken = "CLOUDBASE-TOKEN-do-not-print-0123456789"
	path := filepath.Join(t.TempDir(), "tok")
	writeToken(t, path, secretToken)
	closed := newFake(t)
	base := closed.URL
	closed.Close()
	c := NewClient(NewCloudbaseTokenSource(path), WithBaseURL(base), WithMaxAttempts(1))
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	if err == nil || strings.Contains(err.Error(), secretToken) {
		t.Errorf("err = %v: want an error without the token", err)
	}
	if !strings.Contains(err.Error(), "cloudbase_access_token=REDACTED") {
		t.Errorf("err = %v, want the redacted parameter", err)
	}
}
