package wxacode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWireFormat(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		r        Request
		wantBody map[string]any
	}{
		{"defaults", testToken, Request{Scene: "a=1"}, map[string]any{"scene": "a=1"}},
		{"skip path check", testToken, Request{Scene: "a=1", Page: "pages/x/y", SkipPathCheck: true},
			map[string]any{"scene": "a=1", "page": "pages/x/y", "check_path": false}},
		{"colour as numbers", testToken, Request{Scene: "a=1", LineColor: Color{R: 12, G: 34, B: 56}, Width: 300, EnvVersion: EnvDevelop, IsHyaline: true},
			map[string]any{"scene": "a=1", "line_color": map[string]any{"r": 12.0, "g": 34.0, "b": 56.0}, "width": 300.0, "env_version": "develop", "is_hyaline": true}},
		{"token with query characters", "a+b/c=d&e", Request{Scene: "a=1", AutoColor: true}, map[string]any{"scene": "a=1", "auto_color": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu  sync.Mutex
				got *http.Request
				raw []byte
			)
			c, _ := setup(t, StaticToken(tc.token), func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				got, raw = r, body
				mu.Unlock()
				writeImage(w, "image/jpeg", testJPEG(t))
			})
			if _, err := c.GetUnlimited(context.Background(), tc.r); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", got.Method)
			}
			if got.URL.Path != "/wxa/getwxacodeunlimit" {
				t.Errorf("path = %s, want /wxa/getwxacodeunlimit", got.URL.Path)
			}
			if q := got.URL.Query(); len(q) != 1 || q.Get("access_token") != tc.token {
				t.Errorf("query = %v, want only access_token=%s", q, tc.token)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", raw, err)
			}
			if !equalJSON(body, tc.wantBody) {
				t.Errorf("body = %s, want %v", raw, tc.wantBody)
			}
		})
	}
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestResponses(t *testing.T) {
	jpg, pngImg := testJPEG(t), testPNG(t)
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	tests := []struct {
		name        string
		status      int
		contentType string // "" sends no Content-Type
		body        []byte
		wantImage   []byte
		wantCode    int    // *APIError with this code
		wantResp    string // *ResponseError whose message holds this
	}{
		{"jpeg", 200, "image/jpeg", jpg, jpg, 0, ""},
		{"png", 200, "image/png", pngImg, pngImg, 0, ""},
		{"gif is an image too", 200, "image/gif", gif, gif, 0, ""},
		{"jpeg with trailing padding", 200, "image/jpeg", append(append([]byte{}, jpg...), 0, 0), append(append([]byte{}, jpg...), 0, 0), 0, ""},
		{"json error", 200, "application/json; encoding=utf-8", []byte(`{"errcode":41030,"errmsg":"invalid page rid: 1a2b"}`), nil, 41030, ""},
		{"json error as text/plain", 200, "text/plain", []byte(`{"errcode":40129,"errmsg":"invalid scene"}`), nil, 40129, ""},
		{"json error without content type", 200, "", []byte(` {"errcode":40097,"errmsg":"invalid args"}`), nil, 40097, ""},
		{"json error labelled as image", 200, "image/jpeg", []byte(`{"errcode":45009,"errmsg":"reach max api daily quota limit"}`), nil, 45009, ""},
		{"json error with 4xx status", 400, "application/json", []byte(`{"errcode":40169,"errmsg":"invalid length for scene"}`), nil, 40169, ""},
		{"html 502 page", 502, "text/html", []byte("<html><body>502 Bad Gateway</body></html>"), nil, 0, "HTTP 502, Content-Type text/html"},
		{"empty 200", 200, "image/jpeg", nil, nil, 0, "HTTP 200, Content-Type image/jpeg): empty body"},
		{"empty 200 no type", 200, "", nil, nil, 0, "Content-Type none): empty body"},
		{"errcode 0 without image", 200, "application/json", []byte(`{"errcode":0,"errmsg":"ok"}`), nil, 0, "errcode 0 without an image"},
		{"text body", 200, "text/plain", []byte("hello"), nil, 0, "neither an image nor a JSON error"},
		{"html labelled as image", 200, "image/png", []byte("<html>oops</html>"), nil, 0, "not an image"},
		{"truncated png", 200, "image/png", pngImg[:len(pngImg)-20], nil, 0, "truncated PNG"},
		{"truncated jpeg", 200, "image/jpeg", jpg[:len(jpg)/2], nil, 0, "truncated JPEG"},
		{"image with error status", 500, "image/jpeg", jpg, nil, 0, "HTTP 500"},
		{"json without errcode", 200, "application/json", []byte(`{"hello":1}`), nil, 0, "neither an image nor a JSON error"},
		{"errcode as a string of digits", 200, "application/json", []byte(`{"errcode":"41030","errmsg":"invalid page"}`), nil, 41030, ""},
		{"errmsg that is not a string", 200, "application/json", []byte(`{"errcode":40097,"errmsg":{"detail":1}}`), nil, 40097, ""},
		{"byte order mark before the json", 200, "application/json", []byte("\xef\xbb\xbf{\"errcode\":40129,\"errmsg\":\"invalid scene\"}"), nil, 40129, ""},
		{"png with bytes after IEND", 200, "image/png", append(append([]byte{}, pngImg...), "trailing"...), append(append([]byte{}, pngImg...), "trailing"...), 0, ""},
		{"errcode that is not a number", 200, "application/json", []byte(`{"errcode":"abc"}`), nil, 0, "neither an image nor a JSON error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType == "" {
					w.Header()["Content-Type"] = nil // keep net/http from sniffing one
				} else {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
			}, WithMaxAttempts(1))
			img, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			switch {
			case tc.wantImage != nil:
				if err != nil {
					t.Fatalf("err = %v, want image", err)
				}
				if !bytes.Equal(img, tc.wantImage) {
					t.Errorf("image differs from what was sent (%d vs %d bytes)", len(img), len(tc.wantImage))
				}
			case tc.wantCode != 0:
				var apiErr *APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("err = %v, want *APIError", err)
				}
				if apiErr.Code != tc.wantCode {
					t.Errorf("Code = %d, want %d", apiErr.Code, tc.wantCode)
				}
				if img != nil {
					t.Errorf("image returned with an API error")
				}
			default:
				var respErr *ResponseError
				if !errors.As(err, &respErr) {
					t.Fatalf("err = %v, want *ResponseError", err)
				}
				if respErr.StatusCode != tc.status {
					t.Errorf("StatusCode = %d, want %d", respErr.StatusCode, tc.status)
				}
				if !strings.Contains(err.Error(), tc.wantResp) {
					t.Errorf("err = %q, want it to contain %q", err, tc.wantResp)
				}
				if !strings.HasPrefix(err.Error(), "wxacode: ") {
					t.Errorf("err = %q, want prefix wxacode:", err)
				}
			}
		})
	}
}

func TestAPIError(t *testing.T) {
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, CodeInvalidPage, "invalid page rid: 6555a1b2-1c2d3e4f-5a6b7c8d")
	})
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1", Page: "pages/nope/index"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if want := "wxacode: errcode 41030: invalid page rid: 6555a1b2-1c2d3e4f-5a6b7c8d (" + apiErr.Hint() + ")"; err.Error() != want || apiErr.Hint() == "" {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if got, want := apiErr.RequestID(), "6555a1b2-1c2d3e4f-5a6b7c8d"; got != want {
		t.Errorf("RequestID() = %q, want %q", got, want)
	}
	if !errors.Is(err, &APIError{Code: CodeInvalidPage}) {
		t.Error("errors.Is(err, &APIError{Code: 41030}) = false, want true")
	}
	if errors.Is(err, &APIError{Code: CodeInvalidScene}) {
		t.Error("errors.Is(err, &APIError{Code: 40129}) = true, want false")
	}
	if got := (&APIError{Code: 1, Message: "no id"}).RequestID(); got != "" {
		t.Errorf("RequestID() without rid = %q, want empty", got)
	}
}

func TestTokenRejectionRefreshesOnce(t *testing.T) {
	for _, code := range []int{CodeInvalidCredential, CodeInvalidAccessToken, CodeAccessTokenExpired} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			ts := &recordingInvalidator{tokens: []string{"old-token", "new-token"}}
			var seen []string
			var mu sync.Mutex
			c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) {
				tok := r.URL.Query().Get("access_token")
				mu.Lock()
				seen = append(seen, tok)
				mu.Unlock()
				if tok == "old-token" {
					writeErr(w, code, "token rejected rid: x")
					return
				}
				writeImage(w, "image/jpeg", testJPEG(t))
			}, WithMaxAttempts(1)) // a token refresh is not a retry
			if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
				t.Fatalf("err = %v, want success after refresh", err)
			}
			if got := ts.Invalidated(); len(got) != 1 || got[0] != "old-token" {
				t.Errorf("invalidated = %v, want [old-token]", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"old-token", "new-token"}; strings.Join(seen, ",") != strings.Join(want, ",") {
				t.Errorf("tokens sent = %v, want %v", seen, want)
			}
		})
	}
}

func TestTokenRejectedTwiceIsReturned(t *testing.T) {
	ts := &recordingInvalidator{tokens: []string{"t1", "t2", "t3"}}
	var requests atomic.Int64
	c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		writeErr(w, CodeAccessTokenExpired, "access_token expired rid: y")
	})
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	if !errors.Is(err, &APIError{Code: CodeAccessTokenExpired}) {
		t.Fatalf("err = %v, want errcode 42001", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("requests = %d, want 2 (one retry with a fresh token)", got)
	}
	if got := ts.Invalidated(); len(got) != 1 {
		t.Errorf("invalidated = %v, want one call", got)
	}
}

func TestRejectedStaticTokenIsNotResent(t *testing.T) {
	var requests atomic.Int64
	c, _ := setup(t, StaticToken(testToken), func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		writeErr(w, CodeInvalidCredential, "invalid credential rid: z")
	})
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	if !errors.Is(err, &APIError{Code: CodeInvalidCredential}) {
		t.Fatalf("err = %v, want errcode 40001", err)
	}
	if got := requests.Load(); got != 1 {
		t.Errorf("requests = %d, want 1: the same token would be rejected again", got)
	}
}

func TestTokenSourceErrorIsWrapped(t *testing.T) {
	boom := errors.New("redis down")
	var requests atomic.Int64
	c, _ := setup(t, TokenFunc(func(context.Context) (string, error) { return "", boom }), func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
	})
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	if !errors.Is(err, boom) {
		t.Errorf("errors.Is(err, boom) = false for %v", err)
	}
	var te *TokenError
	if !errors.As(err, &te) {
		t.Errorf("err = %T, want *TokenError", err)
	}
	if want := "wxacode: get access token: redis down"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if requests.Load() != 0 {
		t.Error("a request was sent without a token")
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		fail         func(t *testing.T, w http.ResponseWriter) // how the first failures answer
		failures     int
		maxAttempts  int
		wantRequests int64
		wantOK       bool
	}{
		{"transport error retried", hangUp, 2, 3, 3, true},
		{"5xx retried", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(503) }, 2, 3, 3, true},
		{"errcode -1 retried", func(t *testing.T, w http.ResponseWriter) { writeErr(w, -1, "system error") }, 2, 3, 3, true},
		{"attempts run out", func(t *testing.T, w http.ResponseWriter) { writeErr(w, -1, "system error") }, 5, 3, 3, false},
		{"one attempt means no retry", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(502) }, 1, 1, 1, false},
		{"invalid scene not retried", func(t *testing.T, w http.ResponseWriter) { writeErr(w, 40129, "invalid scene") }, 1, 3, 1, false},
		{"quota not retried", func(t *testing.T, w http.ResponseWriter) { writeErr(w, 45009, "reach max api daily quota limit") }, 1, 3, 1, false},
		{"4xx html not retried", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(404) }, 1, 3, 1, false},
		{"oversized image not retried", func(t *testing.T, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-Length", "5000000")
			w.WriteHeader(200)
		}, 1, 3, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) <= int64(tc.failures) {
					tc.fail(t, w)
					return
				}
				writeImage(w, "image/jpeg", testJPEG(t))
			}, WithMaxAttempts(tc.maxAttempts))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			if (err == nil) != tc.wantOK {
				t.Errorf("err = %v, want success %v", err, tc.wantOK)
			}
			if got := requests.Load(); got != tc.wantRequests {
				t.Errorf("requests = %d, want %d", got, tc.wantRequests)
			}
		})
	}
}

// TestTokenRefreshIsNotAnAttempt: after a rejected token, the fresh one
// still gets every retry WithMaxAttempts allows.
func TestTokenRefreshIsNotAnAttempt(t *testing.T) {
	ts := &recordingInvalidator{tokens: []string{"old", "new"}}
	var requests atomic.Int64
	c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) {
		switch requests.Add(1) {
		case 1:
			writeErr(w, CodeAccessTokenExpired, "access_token expired")
		case 2:
			writeErr(w, CodeSystemBusy, "system error")
		default:
			writeImage(w, "image/jpeg", testJPEG(t))
		}
	}, WithMaxAttempts(2))
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatalf("err = %v, want success: refresh, then one retry of -1", err)
	}
	if got := requests.Load(); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

func TestBackoffGrowsAndIsJittered(t *testing.T) {
	o := newOptions([]Option{WithRetryBackoff(100*time.Millisecond, time.Second)})
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := o.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff(%d) gave the same wait 50 times: no jitter", attempt)
		}
	}
}

// TestCancelWhileWaitingToRetry: the backoff is an hour, so only ctx can end
// the wait.
func TestCancelWhileWaitingToRetry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, -1, "system error")
		cancel()
	}, WithRetryBackoff(time.Hour, time.Hour))
	done := make(chan error, 1)
	go func() {
		_, err := c.GetUnlimited(ctx, Request{Scene: "a=1"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GetUnlimited still waiting for its retry after ctx was cancelled")
	}
}

func TestCancelDuringRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var requests atomic.Int64
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the hang-up
		cancel()
		<-r.Context().Done()
	})
	_, err := c.GetUnlimited(ctx, Request{Scene: "a=1"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := requests.Load(); got != 1 {
		t.Errorf("requests = %d, want 1 (no retry after cancel)", got)
	}
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

func TestBodyCaps(t *testing.T) {
	const fifty = 50 << 20
	chunk := bytes.Repeat([]byte{0xff}, 32<<10)
	tests := []struct {
		name          string
		contentType   string
		contentLength bool // announce the size, or stream it chunked
		size          int
	}{
		{"50 MB image announced", "image/jpeg", true, fifty},
		{"50 MB image streamed", "image/jpeg", false, fifty},
		{"5 MB image announced", "image/png", true, 5 << 20},
		{"65 KB of json streamed", "application/json", false, 65 << 10},
		{"1 MB of html announced", "text/html", true, 1 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
				}
				for sent := 0; sent < tc.size; sent += len(chunk) {
					if _, err := w.Write(chunk[:min(len(chunk), tc.size-sent)]); err != nil {
						return // the client hung up, as it should
					}
				}
			}, WithMaxAttempts(1))
			var before, after runtimeMem
			before.read()
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			after.read()
			var respErr *ResponseError
			if !errors.As(err, &respErr) || !strings.Contains(respErr.Reason, "limit") {
				t.Fatalf("err = %v, want a *ResponseError about the size limit", err)
			}
			// io.ReadAll over a LimitReader: about twice the 4 MiB cap.
			if got := after.total - before.total; got >= 16<<20 {
				t.Errorf("allocated %d MiB reading a %d MiB body, want under 16", got>>20, tc.size>>20)
			}
		})
	}
}

func TestConnectionsAreReused(t *testing.T) {
	var n atomic.Int64
	bigPage := "<html>" + strings.Repeat("x", 100<<10) + "</html>" // over the 64 KiB cap: refused, then drained
	c, srv := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			writeErr(w, 40129, "invalid scene")
		case 2:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, bigPage)
		case 1:
			writeImage(w, "image/jpeg", testJPEG(t))
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(404)
			_, _ = io.WriteString(w, "<html>not found</html>")
		}
	}, WithMaxAttempts(1))
	for range 12 {
		_, _ = c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	}
	if got := srv.conns.Load(); got != 1 {
		t.Errorf("opened %d connections for 12 sequential calls, want 1", got)
	}
}

func TestNoTokenSource(t *testing.T) {
	c := NewClient(nil)
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	if err == nil || !strings.HasPrefix(err.Error(), "wxacode: ") {
		t.Errorf("err = %v, want a wxacode error", err)
	}
}

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
