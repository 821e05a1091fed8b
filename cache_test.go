package wxacode

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// spyCache wraps a Cache, counts its calls, and can hold Get, fail, or hand
// out the very slices it keeps.
type spyCache struct {
	Cache
	gets, puts atomic.Int64
	hold       chan struct{} // when set, Get waits for it to close
	getErr     error
	putErr     error
}

func (s *spyCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.gets.Add(1)
	if s.hold != nil {
		<-s.hold
	}
	if s.getErr != nil {
		return nil, false, s.getErr
	}
	return s.Cache.Get(ctx, key)
}

func (s *spyCache) Put(ctx context.Context, key string, img []byte) error {
	s.puts.Add(1)
	if s.putErr != nil {
		return s.putErr
	}
	return s.Cache.Put(ctx, key, img)
}

// sharingCache keeps and returns the caller's slices as they are: the
// worst a Cache can do with them.
type sharingCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *sharingCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.m[key]
	return img, ok, nil
}

func (s *sharingCache) Put(_ context.Context, key string, img []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = img
	return nil
}

// cachedClient returns a fake, a Client on it with a StableTokenSource and
// cache c.
func cachedClient(t *testing.T, c Cache, opts ...wxacodetest.ServerOption) (*wxacodetest.Server, *Client) {
	t.Helper()
	srv := newFake(t, opts...)
	ts := NewStableTokenSource(srv.AppID(), srv.AppSecret(), WithBaseURL(srv.URL))
	return srv, NewClient(ts, WithBaseURL(srv.URL), WithCache(c), fastRetries())
}

// TestCacheServesEqualRequests: the second call of an equal request makes
// no API call and no token fetch; any field that changes the body is
// another code; an invalid request never reaches the cache.
func TestCacheServesEqualRequests(t *testing.T) {
	spy := &spyCache{Cache: NewMemoryCache(1 << 20)}
	srv, c := cachedClient(t, spy)
	ctx := context.Background()
	first, err := c.GetUnlimited(ctx, Request{Scene: "id=1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.GetUnlimited(ctx, Request{Scene: "id=1", Width: 430, EnvVersion: EnvRelease})
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second call: %v, same bytes %v", err, bytes.Equal(first, again))
	}
	if got := len(srv.Requests()); got != 1 {
		t.Errorf("API calls = %d, want 1", got)
	}
	if got := srv.TokenRequests(); got != 1 {
		t.Errorf("token requests = %d, want 1: a hit fetches no token", got)
	}
	if _, ok, _ := spy.Cache.Get(ctx, Request{Scene: "id=1"}.Key()); !ok {
		t.Error("the minted code is not stored under r.Key()")
	}

	variants := []Request{
		{Scene: "id=2"},
		{Scene: "id=1", Page: "pages/a/index"},
		{Scene: "id=1", SkipPathCheck: true},
		{Scene: "id=1", EnvVersion: EnvTrial},
		{Scene: "id=1", Width: 600},
		{Scene: "id=1", LineColor: Color{R: 7}},
		{Scene: "id=1", AutoColor: true},
		{Scene: "id=1", IsHyaline: true},
	}
	keys := map[string]bool{Request{Scene: "id=1"}.Key(): true}
	for _, r := range variants {
		before := len(srv.Requests())
		if _, err := c.GetUnlimited(ctx, r); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if len(srv.Requests()) != before+1 {
			t.Errorf("%+v was served as another request's code", r)
		}
		if keys[r.Key()] {
			t.Errorf("%+v has the key of another code", r)
		}
		keys[r.Key()] = true
	}

	gets := spy.gets.Load()
	if _, err := c.GetUnlimited(ctx, Request{Scene: "bad scene"}); err == nil {
		t.Fatal("an invalid request succeeded")
	}
	if spy.gets.Load() != gets {
		t.Error("an invalid request reached the cache")
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		a, b Request
		same bool
	}{
		{Request{Scene: "a"}, Request{Scene: "a", Width: 430, EnvVersion: EnvRelease}, true},
		{Request{Scene: "a", AutoColor: true, LineColor: Color{R: 1}}, Request{Scene: "a", AutoColor: true}, true},
		{Request{Scene: "a"}, Request{Scene: "b"}, false},
		{Request{Scene: "a", LineColor: Color{B: 1}}, Request{Scene: "a"}, false},
	}
	for _, tc := range tests {
		ka, kb := tc.a.Key(), tc.b.Key()
		if (ka == kb) != tc.same {
			t.Errorf("Key(%+v) = %s, Key(%+v) = %s; same = %v, want %v", tc.a, ka, tc.b, kb, ka == kb, tc.same)
		}
		if len(ka) != 32 || strings.Trim(ka, "0123456789abcdef") != "" {
			t.Errorf("Key = %q, want 32 characters of [0-9a-f]", ka)
		}
	}
}

// waitCallers waits until n calls share the flight of key.
func waitCallers(t *testing.T, c *Client, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		got := 0
		if f := c.flights[key]; f != nil {
			got = f.callers
		}
		c.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers share the flight, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrentCallsShareOne: 1000 concurrent calls for one code make one
// lookup and at most one API call, cached before or not.
func TestConcurrentCallsShareOne(t *testing.T) {
	const n = 1000
	for _, cachedBefore := range []bool{false, true} {
		name := map[bool]string{false: "not cached", true: "cached before"}[cachedBefore]
		t.Run(name, func(t *testing.T) {
			spy := &spyCache{Cache: NewMemoryCache(1 << 20), hold: make(chan struct{})}
			srv, c := cachedClient(t, spy)
			r := Request{Scene: "viral"}
			if cachedBefore {
				img, err := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL)).GetUnlimited(context.Background(), r)
				if err != nil {
					t.Fatal(err)
				}
				_ = spy.Cache.Put(context.Background(), r.Key(), img)
			}
			calls := len(srv.Requests())
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					if _, err := c.GetUnlimited(context.Background(), r); err != nil {
						errs <- err
					}
				})
			}
			waitCallers(t, c, r.Key(), n)
			close(spy.hold)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			want := 1
			if cachedBefore {
				want = 0
			}
			if got := len(srv.Requests()) - calls; got != want {
				t.Errorf("API calls = %d, want %d", got, want)
			}
			if got := spy.gets.Load(); got != 1 {
				t.Errorf("cache lookups = %d, want 1", got)
			}
		})
	}
}

// TestSharedCallOutlivesItsCallers: a caller whose ctx ends returns at
// once; the shared call goes on for the others and is stored.
func TestSharedCallOutlivesItsCallers(t *testing.T) {
	spy := &spyCache{Cache: NewMemoryCache(1 << 20), hold: make(chan struct{})}
	srv, c := cachedClient(t, spy)
	r := Request{Scene: "id=9"}
	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.GetUnlimited(ctx, r)
		firstErr <- err
	}()
	waitCallers(t, c, r.Key(), 1)
	second := make(chan error, 1)
	go func() {
		_, err := c.GetUnlimited(context.Background(), r)
		second <- err
	}()
	waitCallers(t, c, r.Key(), 2)
	cancel()
	select {
	case err := <-firstErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("first caller: err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first caller did not return when its ctx ended")
	}
	close(spy.hold)
	if err := <-second; err != nil {
		t.Errorf("second caller: %v", err)
	}
	if _, err := c.GetUnlimited(context.Background(), r); err != nil || len(srv.Requests()) != 1 {
		t.Errorf("after the shared call: %v, %d API calls; want the stored code", err, len(srv.Requests()))
	}
}

// TestErrorsAreSharedNotStored: the callers waiting get the error; the next
// call tries again.
func TestErrorsAreSharedNotStored(t *testing.T) {
	spy := &spyCache{Cache: NewMemoryCache(1 << 20), hold: make(chan struct{})}
	srv, c := cachedClient(t, spy)
	srv.FailNext(1, CodeInvalidArgs)
	r := Request{Scene: "id=3"}
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := c.GetUnlimited(context.Background(), r)
			errs <- err
		}()
	}
	waitCallers(t, c, r.Key(), 3)
	close(spy.hold)
	for range 3 {
		if err := <-errs; !errors.Is(err, &APIError{Code: CodeInvalidArgs}) {
			t.Errorf("err = %v, want the shared 40097", err)
		}
	}
	if _, err := c.GetUnlimited(context.Background(), r); err != nil {
		t.Errorf("next call: %v, want a fresh try to succeed", err)
	}
	if got, puts := len(srv.Requests()), spy.puts.Load(); got != 2 || puts != 1 {
		t.Errorf("API calls = %d, puts = %d; want 2 and 1", got, puts)
	}
}

// TestReturnedSlicesBelongToTheCaller: whatever the Cache does with slices,
// changing a returned image changes nothing else.
func TestReturnedSlicesBelongToTheCaller(t *testing.T) {
	cache := &sharingCache{m: map[string][]byte{}}
	_, c := cachedClient(t, cache)
	r := Request{Scene: "id=5"}
	first, err := c.GetUnlimited(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(first)
	clear(first)
	second, err := c.GetUnlimited(context.Background(), r)
	if err != nil || !bytes.Equal(second, want) {
		t.Fatalf("after the caller changed its slice: %v, intact %v", err, bytes.Equal(second, want))
	}
	clear(second)
	if stored, _, _ := cache.Get(context.Background(), r.Key()); !bytes.Equal(stored, want) {
		t.Error("the cache's image changed with the caller's slice")
	}
}

// TestCacheNeverFails: Get and Put errors, and an incomplete image, cost
// nothing but a call; they are logged at Warn without the token.
func TestCacheNeverFails(t *testing.T) {
	logger, logs := debugLogger()
	spy := &spyCache{Cache: NewMemoryCache(1 << 20), getErr: errors.New("redis down"), putErr: errors.New("redis still down")}
	srv := newFake(t)
	c := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(spy), WithLogger(logger))
	img, err := c.GetUnlimited(context.Background(), Request{Scene: "id=6"})
	if err != nil || len(img) == 0 {
		t.Fatalf("GetUnlimited = %d bytes, %v; want the image despite the cache", len(img), err)
	}
	for _, want := range []string{`"level":"WARN","msg":"wxacode: cache get failed`, "redis down", `"level":"WARN","msg":"wxacode: cache put failed`, "redis still down"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), srv.Token()) {
		t.Error("a log record holds the token")
	}

	// An incomplete image in the cache is a miss, and is replaced.
	mem := NewMemoryCache(1 << 20)
	r := Request{Scene: "id=7"}
	good, err := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL)).GetUnlimited(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	_ = mem.Put(context.Background(), r.Key(), good[:len(good)/2])
	c = NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(mem))
	calls := len(srv.Requests())
	if img, err := c.GetUnlimited(context.Background(), r); err != nil || !bytes.Equal(img, good) {
		t.Fatalf("GetUnlimited over a truncated cached image: %v", err)
	}
	if stored, _, _ := mem.Get(context.Background(), r.Key()); len(srv.Requests()) != calls+1 || !bytes.Equal(stored, good) {
		t.Error("the truncated image was served or not replaced")
	}
}

// TestOneCallForAViralCode: 1000 shares of one code across 50 goroutines,
// against a service that takes 150 ms, make one call.
func TestOneCallForAViralCode(t *testing.T) {
	srv, c := cachedClient(t, NewMemoryCache(1<<20), wxacodetest.WithLatency(150*time.Millisecond))
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 50 {
		wg.Go(func() {
			for range 20 {
				if _, err := c.GetUnlimited(context.Background(), Request{Scene: "viral", Page: "pages/item/index"}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || len(srv.Requests()) != 1 {
		t.Errorf("%d failures, %d API calls; want 0 and 1", failed.Load(), len(srv.Requests()))
	}
}

// TestOnlyCompleteImagesAreStored: an answer cut short is an error, and
// nothing is stored for it.
func TestOnlyCompleteImagesAreStored(t *testing.T) {
	jpg := testJPEG(t)
	spy := &spyCache{Cache: NewMemoryCache(1 << 20)}
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		writeImage(w, "image/jpeg", jpg[:len(jpg)/2])
	}, WithCache(spy), WithMaxAttempts(1))
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "id=8"}); err == nil {
		t.Fatal("a truncated image was returned")
	}
	if got := spy.puts.Load(); got != 0 {
		t.Errorf("%d puts, want none", got)
	}
}
