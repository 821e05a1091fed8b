package wxacode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
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

// TestNilTokenSource: a nil source inside the interface (a common
// "optional dependency" pattern) makes calls fail, never panic.
func TestNilTokenSource(t *testing.T) {
	var noFunc TokenFunc
	for _, tc := range []struct {
		name string
		ts   TokenSource
	}{
		{"nil", nil},
		{"nil *StableTokenSource", (*StableTokenSource)(nil)},
		{"nil *CloudbaseTokenSource", (*CloudbaseTokenSource)(nil)},
		{"nil TokenFunc", noFunc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(tc.ts)
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			if err == nil || !strings.Contains(err.Error(), "TokenSource") {
				t.Errorf("err = %v, want one saying the Client has no TokenSource", err)
			}
		})
	}
}
