package wxacode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// clockStart is where every fakeClock starts.
var clockStart = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: clockStart} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to d after clockStart.
func (c *fakeClock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = clockStart.Add(d)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tokenEndpoint is a fake stable_token endpoint. answer decides each reply
// from the decoded request and its number (from 1).
type tokenEndpoint struct {
	t      *testing.T
	mu     sync.Mutex
	seen   []stableTokenRequest
	answer func(req stableTokenRequest, n int) (status int, body string)
}

func (e *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/stable_token" {
		e.t.Errorf("token request %s %s, want POST /cgi-bin/stable_token", r.Method, r.URL.Path)
	}
	if r.URL.RawQuery != "" {
		e.t.Errorf("token request has a query %q: the secret belongs in the body", r.URL.RawQuery)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("token request Content-Type = %q, want application/json", ct)
	}
	raw, _ := io.ReadAll(r.Body)
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil || len(fields) != 4 {
		e.t.Errorf("token request body %s: want exactly grant_type, appid, secret, force_refresh", raw)
	}
	var req stableTokenRequest
	_ = json.Unmarshal(raw, &req)
	e.mu.Lock()
	e.seen = append(e.seen, req)
	n := len(e.seen)
	e.mu.Unlock()
	status, body := e.answer(req, n)
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (e *tokenEndpoint) requests() []stableTokenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]stableTokenRequest(nil), e.seen...)
}

// tokenJSON is a successful stable_token answer.
func tokenJSON(token string, expiresIn int) string {
	return `{"access_token":"` + token + `","expires_in":` + strconv.Itoa(expiresIn) + `}`
}

// newStable starts a token endpoint and returns a source on a fake clock.
func newStable(t *testing.T, answer func(req stableTokenRequest, n int) (int, string), opts ...Option) (*StableTokenSource, *tokenEndpoint, *fakeClock) {
	t.Helper()
	e := &tokenEndpoint{t: t, answer: answer}
	srv := newTestServer(t, e)
	clock := newFakeClock()
	s := NewStableTokenSource(testAppID, testSecret, append([]Option{WithBaseURL(srv.URL), fastRetries()}, opts...)...)
	s.now = clock.Now
	return s, e, clock
}

// numbered answers token-N for request N, valid for expiresIn seconds.
func numbered(expiresIn int) func(stableTokenRequest, int) (int, string) {
	return func(_ stableTokenRequest, n int) (int, string) {
		return 200, tokenJSON("token-"+strconv.Itoa(n), expiresIn)
	}
}

// waitRefresh waits until no refresh of s is in flight.
func waitRefresh(t *testing.T, s *StableTokenSource) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		idle := s.flight == nil
		s.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("refresh still in flight after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func mustToken(t *testing.T, s TokenSource) string {
	t.Helper()
	tok, err := s.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestStableTokenRequest(t *testing.T) {
	s, e, _ := newStable(t, numbered(7200))
	if got := mustToken(t, s); got != "token-1" {
		t.Errorf("Token = %q, want token-1", got)
	}
	want := stableTokenRequest{GrantType: "client_credential", AppID: testAppID, Secret: testSecret, ForceRefresh: false}
	if got := e.requests(); len(got) != 1 || got[0] != want {
		t.Errorf("requests = %+v, want [%+v]", got, want)
	}
}

func TestStableTokenCachingAndMargin(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int
		stillUsed time.Duration // the cached token is served up to here
		refetched time.Duration // and a new one fetched from here
	}{
		{"two hours: refresh 5 minutes early", 7200, 6899 * time.Second, 6900 * time.Second},
		{"300 s near rotation: margin shrinks to 60 s", 300, 239 * time.Second, 240 * time.Second},
		{"10 s: margin 2 s", 10, 7 * time.Second, 8 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, e, clock := newStable(t, numbered(tc.expiresIn))
			mustToken(t, s)
			for _, at := range []time.Duration{time.Second, tc.stillUsed / 2, tc.stillUsed} {
				clock.Set(at)
				if got := mustToken(t, s); got != "token-1" {
					t.Fatalf("at %v: Token = %q, want cached token-1", at, got)
				}
			}
			if got := len(e.requests()); got != 1 {
				t.Fatalf("requests before the margin = %d, want 1", got)
			}
			// From the refresh point the cached token, still valid, is
			// served at once while a new one is fetched in the background.
			clock.Set(tc.refetched)
			if got := mustToken(t, s); got != "token-1" && got != "token-2" {
				t.Errorf("at %v: Token = %q, want token-1 or token-2", tc.refetched, got)
			}
			waitRefresh(t, s)
			if got := len(e.requests()); got != 2 {
				t.Errorf("requests from the refresh point = %d, want 2", got)
			}
			if got := mustToken(t, s); got != "token-2" {
				t.Errorf("at %v after the refresh: Token = %q, want token-2", tc.refetched, got)
			}
		})
	}
}

func TestStableTokenInvalidate(t *testing.T) {
	t.Run("fresh token without forcing", func(t *testing.T) {
		s, e, _ := newStable(t, numbered(7200))
		tok := mustToken(t, s)
		s.InvalidateToken(tok)
		if got := mustToken(t, s); got != "token-2" {
			t.Errorf("Token after invalidate = %q, want token-2", got)
		}
		for i, r := range e.requests() {
			if r.ForceRefresh {
				t.Errorf("request %d forced a refresh; the service gave a new token without it", i+1)
			}
		}
	})
	t.Run("stale token is ignored", func(t *testing.T) {
		s, e, _ := newStable(t, numbered(7200))
		mustToken(t, s)
		s.InvalidateToken("some-older-token")
		mustToken(t, s)
		if got := len(e.requests()); got != 1 {
			t.Errorf("requests = %d, want 1: an old token's rejection says nothing of the current one", got)
		}
	})
	t.Run("same token back forces once", func(t *testing.T) {
		s, e, _ := newStable(t, func(req stableTokenRequest, n int) (int, string) {
			if req.ForceRefresh {
				return 200, tokenJSON("forced", 7200)
			}
			return 200, tokenJSON("stuck", 7200)
		})
		tok := mustToken(t, s)
		s.InvalidateToken(tok)
		if got := mustToken(t, s); got != "forced" {
			t.Errorf("Token = %q, want forced", got)
		}
		got := e.requests()
		if len(got) != 3 || got[1].ForceRefresh || !got[2].ForceRefresh {
			t.Errorf("requests = %+v, want normal, normal, forced", got)
		}
	})
}

func TestStableTokenForceLimits(t *testing.T) {
	// The service always hands back the same token unless forced, and a
	// forced one is rejected too: the worst case for a refresh loop.
	s, e, clock := newStable(t, func(req stableTokenRequest, n int) (int, string) {
		return 200, tokenJSON("same", 7200)
	})
	forced := func() int {
		n := 0
		for _, r := range e.requests() {
			if r.ForceRefresh {
				n++
			}
		}
		return n
	}
	reject := func() {
		t.Helper()
		s.InvalidateToken(mustToken(t, s))
		mustToken(t, s)
	}
	reject()
	if got := forced(); got != 1 {
		t.Fatalf("forced = %d after one rejection, want 1", got)
	}
	clock.Advance(10 * time.Second)
	reject()
	if got := forced(); got != 1 {
		t.Errorf("forced = %d 10 s later, want still 1: the service ignores forcing under 30 s", got)
	}
	for range 20 {
		clock.Advance(31 * time.Second)
		reject()
	}
	if got := forced(); got != maxForcedPerDay {
		t.Errorf("forced = %d in a day, want the cap %d", got, maxForcedPerDay)
	}
	clock.Advance(24 * time.Hour)
	reject()
	if got := forced(); got != maxForcedPerDay+1 {
		t.Errorf("forced = %d a day later, want %d", got, maxForcedPerDay+1)
	}
}

func TestStableTokenErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode int
		wantResp string
	}{
		{"bad secret", 200, `{"errcode":40125,"errmsg":"invalid appsecret rid: 1"}`, 40125, ""},
		{"errcode as a string, after a BOM", 200, "\xef\xbb\xbf" + `{"errcode":"40125","errmsg":["invalid appsecret"]}`, 40125, ""},
		{"errmsg echoes the secret", 200, `{"errcode":40125,"errmsg":"invalid appsecret ` + testSecret + `"}`, 40125, ""},
		{"not json", 200, `<html>hi</html>`, 0, "not JSON"},
		{"no token", 200, `{"expires_in":7200}`, 0, "no access_token"},
		{"no expiry", 200, `{"access_token":"x"}`, 0, "expires_in"},
		{"http 404", 404, `{}`, 0, "token request failed"},
		// A proxy's page: the status is what went wrong, not the format.
		{"http 503 html", 503, `<html>503 Service Unavailable</html>`, 0, "HTTP status 503"},
		{"http 502 empty", 502, ``, 0, "HTTP status 502"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := newStable(t, func(stableTokenRequest, int) (int, string) { return tc.status, tc.body })
			_, err := s.Token(context.Background())
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error holds the secret: %v", err)
			}
			if tc.wantCode != 0 {
				if !errors.Is(err, &APIError{Code: tc.wantCode}) {
					t.Errorf("err = %v, want errcode %d", err, tc.wantCode)
				}
				return
			}
			var respErr *ResponseError
			if !errors.As(err, &respErr) || !strings.Contains(err.Error(), tc.wantResp) {
				t.Fatalf("err = %v, want a *ResponseError about %q", err, tc.wantResp)
			}
			// The body as sent, but for a token in it.
			wantBody := strings.Replace(tc.body, `"access_token":"x"`, `"access_token":"REDACTED"`, 1)
			if respErr.StatusCode != tc.status || string(respErr.Body) != wantBody {
				t.Errorf("StatusCode %d, Body %q; want %d and %q", respErr.StatusCode, respErr.Body, tc.status, wantBody)
			}
			if tc.status/100 != 2 && strings.Contains(respErr.Reason, "JSON") {
				t.Errorf("Reason %q speaks of JSON, want the status", respErr.Reason)
			}
		})
	}
}

func TestStableTokenTransportErrorHasNoSecret(t *testing.T) {
	srv := newTestServer(t, http.NotFoundHandler())
	srv.Close()
	c := NewClient(NewStableTokenSource(testAppID, testSecret, WithBaseURL(srv.URL), WithMaxAttempts(1)), WithBaseURL(srv.URL))
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *TokenError", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error holds the secret: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "wxacode: get access token: Post ") {
		t.Errorf("err = %q, want the transport error after one prefix", err)
	}
}

func TestStableTokenRetriesTransientFailures(t *testing.T) {
	s, e, _ := newStable(t, func(_ stableTokenRequest, n int) (int, string) {
		if n == 1 {
			return 200, `{"errcode":-1,"errmsg":"system error"}`
		}
		if n == 2 {
			return 502, `bad gateway`
		}
		return 200, tokenJSON("ok", 7200)
	})
	if got := mustToken(t, s); got != "ok" {
		t.Errorf("Token = %q, want ok", got)
	}
	if got := len(e.requests()); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

func TestStableTokenServesCachedTokenWhenRefreshFails(t *testing.T) {
	s, e, clock := newStable(t, func(_ stableTokenRequest, n int) (int, string) {
		if n == 1 {
			return 200, tokenJSON("good", 7200)
		}
		return 200, `{"errcode":40125,"errmsg":"invalid appsecret"}`
	})
	mustToken(t, s)
	clock.Advance(7000 * time.Second) // past the refresh point, before expiry
	if got := mustToken(t, s); got != "good" {
		t.Errorf("Token = %q, want the still valid cached token", got)
	}
	waitRefresh(t, s)
	clock.Advance(10 * time.Second)
	mustToken(t, s)
	waitRefresh(t, s)
	if got := len(e.requests()); got != 2 {
		t.Errorf("token requests = %d, want 2: no new try within 30 s of a failed refresh", got)
	}
	clock.Advance(30 * time.Second)
	mustToken(t, s)
	waitRefresh(t, s)
	if got := len(e.requests()); got != 3 {
		t.Errorf("token requests = %d, want 3: tried again after 30 s", got)
	}
	clock.Advance(300 * time.Second) // expired
	if _, err := s.Token(context.Background()); !errors.Is(err, &APIError{Code: 40125}) {
		t.Errorf("err = %v after expiry, want the refresh error 40125", err)
	}
}

func TestStableTokenCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	s, _, _ := newStable(t, func(stableTokenRequest, int) (int, string) {
		<-release
		return 200, tokenJSON("late", 7200)
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	close(release)
	// The refresh went on for everyone else.
	if got := mustToken(t, s); got != "late" {
		t.Errorf("Token = %q, want late", got)
	}
}

// TestColdClientFetchesOneToken: 100 goroutines on a cold client, one token
// request.
func TestColdClientFetchesOneToken(t *testing.T) {
	var tokenRequests atomic.Int64
	jpg := testJPEG(t)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		time.Sleep(20 * time.Millisecond) // let the callers pile up
		_, _ = io.WriteString(w, tokenJSON("shared", 7200))
	})
	mux.HandleFunc("POST /wxa/getwxacodeunlimit", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") != "shared" {
			writeErr(w, 40001, "invalid credential")
			return
		}
		writeImage(w, "image/jpeg", jpg)
	})
	srv := newTestServer(t, mux)
	c := NewClient(NewStableTokenSource(testAppID, testSecret, WithBaseURL(srv.URL)), WithBaseURL(srv.URL))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := tokenRequests.Load(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
}

func TestLogging(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var apiCalls atomic.Int64
	mux := http.NewServeMux()
	var tokens atomic.Int64
	mux.HandleFunc("POST /cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, tokenJSON(testToken+strconv.Itoa(int(tokens.Add(1))), 7200))
	})
	mux.HandleFunc("POST /wxa/getwxacodeunlimit", func(w http.ResponseWriter, r *http.Request) {
		switch apiCalls.Add(1) {
		case 1:
			writeErr(w, 42001, "access_token expired rid: rid-expired")
		case 2:
			writeErr(w, -1, "system error rid: rid-busy")
		case 3:
			writeImage(w, "image/jpeg", testJPEG(t))
		default:
			writeErr(w, 41030, "invalid page rid: rid-page")
		}
	})
	srv := newTestServer(t, mux)
	opts := []Option{WithBaseURL(srv.URL), WithLogger(logger), fastRetries()}
	c := NewClient(NewStableTokenSource(testAppID, testSecret, opts...), opts...)
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatal(err)
	}
	_, _ = c.GetUnlimited(context.Background(), Request{Scene: "a=1", Page: "pages/gone/index"})
	out := logs.String()
	for _, want := range []string{"level=DEBUG msg=\"wxacode: access token refreshed\"", "level=DEBUG msg=\"wxacode: retrying\"",
		"level=WARN msg=\"wxacode: API error\" errcode=42001 rid=rid-expired", "errcode=41030 rid=rid-page", "access token rejected"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{testToken, testSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds a credential %q:\n%s", secret, out)
		}
	}
}

func TestNoLoggingByDefault(t *testing.T) {
	c := NewClient(StaticToken("x"))
	if c.opts.logger != nil {
		t.Error("a Client logs by default")
	}
	if NewStableTokenSource("a", "b").opts.logger != nil {
		t.Error("a StableTokenSource logs by default")
	}
}

// TestValidTokenIsNeverWithheld: inside the refresh margin, while the
// refresh hangs, every caller gets the cached token at once, and one
// refresh runs; only once the token has expired do callers wait.
func TestValidTokenIsNeverWithheld(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	s, e, clock := newStable(t, func(_ stableTokenRequest, n int) (int, string) {
		if n > 1 {
			<-release // the refresh hangs
		}
		return 200, tokenJSON("token-"+strconv.Itoa(n), 7200)
	})
	mustToken(t, s)
	clock.Set(7000 * time.Second) // inside the 5-minute margin
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := s.Token(ctx)
		cancel()
		if err != nil || got != "token-1" {
			t.Fatalf("Token = %q, %v; want the cached token-1 at once", got, err)
		}
	}
	clock.Set(7199 * time.Second) // the last second of its life
	if got := mustToken(t, s); got != "token-1" {
		t.Fatalf("Token = %q, want token-1", got)
	}
	clock.Set(7200 * time.Second) // expired: now a caller must wait
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := s.Token(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Token after expiry with a hanging refresh: err = %v, want the ctx deadline", err)
	}
	if got := len(e.requests()); got != 2 {
		t.Errorf("token requests = %d, want 2: one refresh at a time", got)
	}
	once.Do(func() { close(release) })
	waitRefresh(t, s)
	if got := mustToken(t, s); got != "token-2" {
		t.Errorf("Token = %q after the refresh, want token-2", got)
	}
}

// TestHugeExpiresInIsCapped: expires_in too large for a time.Duration is
// capped at a day, so the token is cached instead of refetched each call.
func TestHugeExpiresInIsCapped(t *testing.T) {
	s, e, clock := newStable(t, func(_ stableTokenRequest, n int) (int, string) {
		return 200, `{"access_token":"token-` + strconv.Itoa(n) + `","expires_in":9300000000}`
	})
	for _, at := range []time.Duration{0, time.Minute, 20 * time.Hour} {
		clock.Set(at)
		if got := mustToken(t, s); got != "token-1" {
			t.Errorf("at %v: Token = %q, want the cached token-1", at, got)
		}
	}
	if got := len(e.requests()); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	clock.Set(24 * time.Hour) // past the cap
	mustToken(t, s)
	waitRefresh(t, s)
	if got := len(e.requests()); got != 2 {
		t.Errorf("token requests after a day = %d, want 2", got)
	}
}
