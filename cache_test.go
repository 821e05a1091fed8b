package wxacode

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// spyCache wraps a Cache, counts its calls, and can watch Get, fail, or hand
// out the very slices it keeps.
type spyCache struct {
	Cache
	gets, puts atomic.Int64
	getErr     error
	putErr     error
	duringGet  func() // when set, Get calls it
}

func (s *spyCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.gets.Add(1)
	if s.duringGet != nil {
		s.duringGet()
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

// heldClient returns a fake and a Client on it with cache c, whose token
// source waits until hold is closed: calls that miss pile up on one flight.
func heldClient(t *testing.T, c Cache, hold chan struct{}, opts ...Option) (*wxacodetest.Server, *Client) {
	t.Helper()
	srv := newFake(t)
	ts := TokenFunc(func(ctx context.Context) (string, error) {
		select {
		case <-hold:
			return srv.Token(), nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	return srv, NewClient(ts, append([]Option{WithBaseURL(srv.URL), WithCache(c), fastRetries()}, opts...)...)
}

// TestConcurrentCallsShareOne: 1000 concurrent misses of one code make one
// API call; 1000 concurrent hits make none, and each is served by its own
// lookup, with no shared call.
func TestConcurrentCallsShareOne(t *testing.T) {
	const n = 1000
	r := Request{Scene: "viral"}
	t.Run("not cached", func(t *testing.T) {
		hold := make(chan struct{})
		spy := &spyCache{Cache: NewMemoryCache(1 << 20)}
		srv, c := heldClient(t, spy, hold)
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
		close(hold)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := len(srv.Requests()); got != 1 {
			t.Errorf("API calls = %d, want 1", got)
		}
		// Each caller's own lookup, and the flight's.
		if got := spy.gets.Load(); got != n+1 {
			t.Errorf("cache lookups = %d, want %d", got, n+1)
		}
	})
	t.Run("cached before", func(t *testing.T) {
		spy := &spyCache{Cache: NewMemoryCache(1 << 20)}
		srv, c := cachedClient(t, spy)
		if _, err := c.GetUnlimited(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		var flights atomic.Int64
		spy.duringGet = func() {
			c.mu.Lock()
			flights.Add(int64(len(c.flights)))
			c.mu.Unlock()
		}
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := c.GetUnlimited(context.Background(), r); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := len(srv.Requests()); got != 1 {
			t.Errorf("API calls = %d, want only the first", got)
		}
		if got := flights.Load(); got != 0 {
			t.Errorf("hits ran inside %d shared calls, want none", got)
		}
	})
}

// TestSharedCallOutlivesItsCallers: a caller whose ctx ends returns at
// once; the shared call goes on for the others and is stored.
func TestSharedCallOutlivesItsCallers(t *testing.T) {
	hold := make(chan struct{})
	srv, c := heldClient(t, NewMemoryCache(1<<20), hold)
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
	close(hold)
	if err := <-second; err != nil {
		t.Errorf("second caller: %v", err)
	}
	if _, err := c.GetUnlimited(context.Background(), r); err != nil || len(srv.Requests()) != 1 {
		t.Errorf("after the shared call: %v, %d API calls; want the stored code", err, len(srv.Requests()))
	}
}

// TestSharedCallEndsWithItsLastCaller: callers that give up while queued
// at the rate limiter leave nothing behind: no request is sent for them,
// and their turns go to the next live caller.
func TestSharedCallEndsWithItsLastCaller(t *testing.T) {
	srv := newFake(t)
	// One call a second, a burst of one.
	c := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(NewMemoryCache(1<<20)), WithRateLimit(60, time.Minute))
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "first"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, err := c.GetUnlimited(ctx, Request{Scene: "gaveup" + strconv.Itoa(i)}); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("a caller queued for 50 ms: err = %v, want its deadline", err)
			}
		})
	}
	wg.Wait()
	// Ten abandoned calls holding turns would keep this one waiting 10 s.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.GetUnlimited(ctx, Request{Scene: "live"}); err != nil {
		t.Fatalf("the next live caller: %v (the abandoned calls took its turns)", err)
	}
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Scene, "gaveup") {
			t.Errorf("a request was sent for %s, whose caller had left", r.Scene)
		}
	}
	c.mu.Lock()
	left := len(c.flights)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d shared calls left behind", left)
	}
}

// TestSharedCallHasNoDeadlineOfItsOwn: the shared call keeps the first
// caller's context values, and no deadline shorter than a caller's.
func TestSharedCallHasNoDeadlineOfItsOwn(t *testing.T) {
	srv := newFake(t)
	type ctxKey struct{}
	var sawValue any
	var sawDeadline time.Time
	var hasDeadline bool
	ts := TokenFunc(func(ctx context.Context) (string, error) {
		sawValue = ctx.Value(ctxKey{})
		sawDeadline, hasDeadline = ctx.Deadline()
		return srv.Token(), nil
	})
	c := NewClient(ts, WithBaseURL(srv.URL), WithCache(NewMemoryCache(1<<20)))
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "trace-1"), 10*time.Minute)
	defer cancel()
	callerDeadline, _ := ctx.Deadline()
	if _, err := c.GetUnlimited(ctx, Request{Scene: "id=1"}); err != nil {
		t.Fatal(err)
	}
	if sawValue != "trace-1" {
		t.Errorf("the token source saw value %v, want the caller's", sawValue)
	}
	if hasDeadline && sawDeadline.Before(callerDeadline) {
		t.Errorf("the token source saw a deadline %v before the caller's", callerDeadline.Sub(sawDeadline))
	}
}

// TestErrorsAreSharedNotStored: the callers waiting get the error; the next
// call tries again.
func TestErrorsAreSharedNotStored(t *testing.T) {
	hold := make(chan struct{})
	spy := &spyCache{Cache: NewMemoryCache(1 << 20)}
	srv, c := heldClient(t, spy, hold)
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
	close(hold)
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

// TestCacheHitIsCheap: a hit makes at most two copies of the image (the
// Cache's and the caller's).
func TestCacheHitIsCheap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations; .ci/run runs this without it")
	}
	img := make([]byte, 64<<10)
	copy(img, "\xff\xd8\xff\xe0")
	img[len(img)-2], img[len(img)-1] = 0xff, 0xd9
	mem := NewMemoryCache(1 << 20)
	r := Request{Scene: "id=1"}
	_ = mem.Put(context.Background(), r.Key(), img)
	c := NewClient(StaticToken("unused"), WithBaseURL("http://127.0.0.1:1"), WithCache(mem))
	const hits = 50
	var before, after runtimeMem
	before.read()
	for range hits {
		if _, err := c.GetUnlimited(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	after.read()
	perHit := (after.total - before.total) / hits
	if perHit > 2*64<<10+4<<10 {
		t.Errorf("a 64 KiB hit allocated %d KiB, want at most two copies (128 KiB)", perHit>>10)
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

// releasingCache is a MemoryCache that records Release calls, as a Cache
// holding a key for the caller whose Get missed would.
type releasingCache struct {
	*MemoryCache
	mu       sync.Mutex
	released []string
}

func (r *releasingCache) Release(_ context.Context, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released = append(r.released, key)
}

func (r *releasingCache) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.released...)
}

// TestCacheReleaserHearsOfFailedMints: a CacheReleaser is told when the
// mint that followed a miss ends without a Put (an API error, or every
// caller gone), and only then.
func TestCacheReleaserHearsOfFailedMints(t *testing.T) {
	srv := wxacodetest.NewServer()
	t.Cleanup(srv.Close)
	cache := &releasingCache{MemoryCache: NewMemoryCache(1 << 20)}
	c := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(cache), fastRetries())
	ctx := context.Background()

	if _, err := c.GetUnlimited(ctx, Request{Scene: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := cache.keys(); len(got) != 0 {
		t.Errorf("Release called after a stored code: %v", got)
	}
	srv.FailNext(1, CodeInvalidPage)
	failed := Request{Scene: "fails", Page: "pages/x"}
	if _, err := c.GetUnlimited(ctx, failed); err == nil {
		t.Fatal("no error from a failed call")
	}
	if got, want := cache.keys(), []string{failed.Key()}; !slices.Equal(got, want) {
		t.Errorf("released %v, want %v", got, want)
	}

	// every caller leaves while the call waits for its turn
	slow := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(cache), WithRateLimit(1, time.Hour))
	if _, err := slow.GetUnlimited(ctx, Request{Scene: "burst"}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	left := Request{Scene: "left"}
	if _, err := slow.GetUnlimited(cctx, left); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetUnlimited = %v, want the deadline", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(cache.keys(), left.Key()) {
		if time.Now().After(deadline) {
			t.Fatalf("released %v, want %s once the last caller left", cache.keys(), left.Key())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
