package wxacode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// keepingCache embeds *MemoryCache but answers from a sharingCache, which
// hands out the very slices it keeps: the client must copy what this Get
// returns, whatever methods the embedded cache promotes.
type keepingCache struct {
	*MemoryCache
	keep *sharingCache
}

func (k *keepingCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return k.keep.Get(ctx, key)
}

func (k *keepingCache) Put(ctx context.Context, key string, img []byte) error {
	return k.keep.Put(ctx, key, img)
}

// TestEmbeddedCacheIsCopied: a user's Cache that embeds *MemoryCache and
// keeps its slices: one caller's edit of its image never reaches the next.
func TestEmbeddedCacheIsCopied(t *testing.T) {
	srv := wxacodetest.NewServer()
	t.Cleanup(srv.Close)
	cache := &keepingCache{MemoryCache: NewMemoryCache(1 << 20), keep: &sharingCache{m: map[string][]byte{}}}
	c := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(cache))
	ctx := context.Background()
	first, err := c.GetUnlimited(ctx, Request{Scene: "id=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(first)
	for range 2 {
		img, err := c.GetUnlimited(ctx, Request{Scene: "id=1"})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(img, want) {
			t.Fatalf("a hit returned %d bytes changed by an earlier caller", countDiff(img, want))
		}
		clear(img) // the caller's own copy: its to change
	}
	if got := len(srv.Requests()); got != 1 {
		t.Errorf("%d API calls, want 1", got)
	}
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

// nilLimiter is a user's Limiter whose nil pointer would panic if called.
type nilLimiter struct{ n int }

func (l *nilLimiter) Wait(context.Context) error { l.n++; return nil }

// TestTypedNilsMeanNone: a typed-nil Cache or Limiter is no cache and no
// limit, as an untyped nil is; nothing panics.
func TestTypedNilsMeanNone(t *testing.T) {
	srv := wxacodetest.NewServer()
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"MemoryCache", WithCache((*MemoryCache)(nil))},
		{"DirCache", WithCache((*DirCache)(nil))},
		{"user Limiter", WithLimiter((*nilLimiter)(nil))},
		{"user Cache", WithCache((*keepingCache)(nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), tc.opt)
			for range 2 {
				if _, err := c.GetUnlimited(context.Background(), Request{Scene: "id=1"}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// leakyLimiter fails with an error that carries the token it was handed
// by a careless wrapper.
type leakyLimiter struct {
	waits atomic.Int64
	msg   string
}

func (l *leakyLimiter) Wait(context.Context) error {
	l.waits.Add(1)
	return fmt.Errorf("limiter store refused %s", l.msg)
}

// TestLimiterErrorKeepsItsType: redaction keeps a *LimiterError a
// *LimiterError, so it is still final (not retried) and matchable.
func TestLimiterErrorKeepsItsType(t *testing.T) {
	for _, msg := range []string{"the request", "https://x/?access_token=" + testToken + "-long-enough"} {
		t.Run(msg, func(t *testing.T) {
			l := &leakyLimiter{msg: msg}
			c, _ := setup(t, StaticToken(testToken+"-long-enough"), func(w http.ResponseWriter, r *http.Request) {
				writeImage(w, "image/jpeg", testJPEG(t))
			}, WithLimiter(l), WithMaxAttempts(5))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			var limErr *LimiterError
			if !errors.As(err, &limErr) {
				t.Fatalf("err = %#v, want a *LimiterError", err)
			}
			if got := l.waits.Load(); got != 1 {
				t.Errorf("%d Waits, want 1: a Limiter's error is final", got)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("the token is in %q", err)
			}
		})
	}
}

// rotatingSource gives one token until told it was rejected, then another.
type rotatingSource struct {
	mu       sync.Mutex
	tokens   []string
	rejected int
}

func (r *rotatingSource) Token(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokens[min(r.rejected, len(r.tokens)-1)], nil
}

func (r *rotatingSource) InvalidateToken(string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected++
}

// TestRejectedTokenRedactedAfterRefresh: after a 40001, the resend's
// answer echoes both the fresh token and the rejected one: neither is in
// the error.
func TestRejectedTokenRedactedAfterRefresh(t *testing.T) {
	old, fresh := "OLD-TOKEN-0123456789abcdef", "NEW-TOKEN-0123456789abcdef"
	ts := &rotatingSource{tokens: []string{old, fresh}}
	c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest: %s (last: %s)"}`,
			r.URL.Query().Get("access_token"), old)
	})
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	if !errors.Is(err, &APIError{Code: 40001}) {
		t.Fatalf("err = %v, want 40001", err)
	}
	assertClean(t, err, "", old, fresh)
}

// TestJSONEscapedSecretRedacted: a stable_token error body that echoes
// the request with "/" written as "\/" (as PHP does) keeps no part of the
// secret in ResponseError.Body.
func TestJSONEscapedSecretRedacted(t *testing.T) {
	secret := "SEC/RET/zyxwvutsrqp/tail-of-it"
	srv := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		escaped := strings.ReplaceAll(secret, "/", `\/`)
		fmt.Fprintf(w, `{"request":{"grant_type":"client_credential","appid":"%s","secret":"%s"}, "echo": "%s"}`, testAppID, escaped, escaped)
	}))
	ts := NewStableTokenSource(testAppID, secret, WithBaseURL(srv.URL), WithMaxAttempts(1))
	_, err := ts.Token(context.Background())
	var respErr *ResponseError
	if !errors.As(err, &respErr) {
		t.Fatalf("err = %v, want a *ResponseError", err)
	}
	for _, part := range strings.Split(secret, "/") {
		if strings.Contains(string(respErr.Body), part) || strings.Contains(err.Error(), part) {
			t.Errorf("%q of the secret is in the body %q", part, respErr.Body)
		}
	}
}

// TestLargeBodiesAllocateLikeReadAll: a body over maxPrealloc, honest or
// longer than it declared, costs at most about 1.2 times what io.ReadAll
// would allocate for it.
func TestLargeBodiesAllocateLikeReadAll(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations; .ci/run runs this without it")
	}
	allocated := func(f func()) uint64 {
		var m runtimeMem
		m.read()
		before := m.total
		f()
		m.read()
		return m.total - before
	}
	for _, tc := range []struct {
		name     string
		size     int
		declared int64
	}{
		{"512 KiB", 512 << 10, 512 << 10},
		{"4 MiB", 4 << 20, 4 << 20},
		{"declares 10 bytes, sends 3 MiB", 3 << 20, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{0xAB}, tc.size)
			readAll := allocated(func() { _, _ = io.ReadAll(io.LimitReader(bytes.NewReader(body), maxImageBytes+1)) })
			got := allocated(func() {
				resp := &http.Response{StatusCode: 200, ContentLength: tc.declared, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
				if b, err := readBody(resp, maxImageBytes); err != nil || len(b) != tc.size {
					t.Fatalf("readBody = %d bytes, %v", len(b), err)
				}
			})
			if limit := readAll * 12 / 10; got > limit {
				t.Errorf("%d bytes allocated for a %d-byte body, io.ReadAll %d: want at most %d", got, tc.size, readAll, limit)
			}
			t.Logf("%d bytes allocated (%.1fx the body), io.ReadAll %d (%.1fx)", got, float64(got)/float64(tc.size), readAll, float64(readAll)/float64(tc.size))
		})
	}
}

// TestCloudbaseHalfWrittenFile: a file caught mid-write at the recheck
// ("TOKEN-ne", changed just now) does not replace the token in service;
// once it has been left alone a while, its token is used.
func TestCloudbaseHalfWrittenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloudbase_access_token")
	writeToken(t, path, "TOKEN-old-0123456789")
	settled(t, path)
	ts := NewCloudbaseTokenSource(path)
	clock := newFakeClock()
	ts.now = clock.Now
	ctx := context.Background()
	if tok, err := ts.Token(ctx); err != nil || tok != "TOKEN-old-0123456789" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	writeToken(t, path, "TOKEN-ne") // the platform is half way through
	clock.Advance(1100 * time.Millisecond)
	if tok, err := ts.Token(ctx); err != nil || tok != "TOKEN-old-0123456789" {
		t.Errorf("Token while the file is written = %q, %v; want the token in service", tok, err)
	}
	writeToken(t, path, "TOKEN-new-0123456789")
	settled(t, path)
	clock.Advance(1100 * time.Millisecond)
	if tok, err := ts.Token(ctx); err != nil || tok != "TOKEN-new-0123456789" {
		t.Errorf("Token once written = %q, %v; want the new token", tok, err)
	}
}

// The token sources that name their parameter do it through the exported
// interface, so a source of one's own can too.
var _ TokenParamNamer = (*CloudbaseTokenSource)(nil)
