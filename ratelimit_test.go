package wxacode

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSleeper moves a fakeClock instead of sleeping and records the waits.
type fakeSleeper struct {
	clock *fakeClock
	waits []time.Duration
}

func (f *fakeSleeper) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.waits = append(f.waits, d)
	f.clock.Advance(d)
	return nil
}

func fakeLimiter(n int, period time.Duration) (*rateLimiter, *fakeClock, *fakeSleeper) {
	l := newRateLimiter(n, period)
	clock := newFakeClock()
	s := &fakeSleeper{clock: clock}
	l.now, l.sleep = clock.Now, s.sleep
	return l, clock, s
}

func TestRateLimiterSpacing(t *testing.T) {
	l, _, s := fakeLimiter(60, time.Minute) // one a second, burst 1
	for range 5 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{time.Second, time.Second, time.Second, time.Second}
	if len(s.waits) != len(want) {
		t.Fatalf("waits = %v, want %v", s.waits, want)
	}
	for i := range want {
		if s.waits[i] != want[i] {
			t.Errorf("wait %d = %v, want %v", i, s.waits[i], want[i])
		}
	}
}

// TestRateLimiterHoldsTheRate: 20,000 calls at 4500 a minute on a fake
// clock; no 60-second window holds more than 4500 plus the one-second burst.
func TestRateLimiterHoldsTheRate(t *testing.T) {
	const n = 4500
	l, clock, _ := fakeLimiter(n, time.Minute)
	if l.burst != 75 {
		t.Errorf("burst = %d, want 75 (a sixtieth: one second's worth)", l.burst)
	}
	var times []time.Time
	for range 20000 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		times = append(times, clock.Now())
		clock.Advance(time.Millisecond) // callers are not infinitely fast
	}
	start := 0
	for end := range times {
		for times[end].Sub(times[start]) >= time.Minute {
			start++
		}
		if got := end - start + 1; got > n+l.burst {
			t.Fatalf("%d calls within a minute ending at call %d, want at most %d", got, end, n+l.burst)
		}
	}
	elapsed := times[len(times)-1].Sub(times[0])
	if rate := float64(len(times)-l.burst) / elapsed.Minutes(); rate > n*1.01 || rate < n*0.95 {
		t.Errorf("sustained rate %.0f/min, want about %d", rate, n)
	}
}

func TestRateLimiterCancelGivesTurnBack(t *testing.T) {
	l, _, s := fakeLimiter(60, time.Minute)
	_ = l.Wait(context.Background()) // uses the burst
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	_ = l.Wait(context.Background())
	if len(s.waits) != 1 || s.waits[0] != time.Second {
		t.Errorf("waits = %v, want one of 1s: the cancelled call gave its turn back", s.waits)
	}
}

func TestNoRateLimitByDefault(t *testing.T) {
	if NewClient(StaticToken("x")).opts.limiter != nil {
		t.Error("rate limited by default")
	}
	for _, tc := range []struct {
		n int
		p time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {10, 0}} {
		if newRateLimiter(tc.n, tc.p) != nil {
			t.Errorf("newRateLimiter(%d, %v) limits", tc.n, tc.p)
		}
	}
}

func TestClientRateLimitCountsRetries(t *testing.T) {
	var requests atomic.Int64
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 2 {
			writeErr(w, CodeSystemBusy, "system error")
			return
		}
		writeImage(w, "image/jpeg", testJPEG(t))
	}, WithRateLimit(60, time.Minute))
	clock := newFakeClock()
	s := &fakeSleeper{clock: clock}
	l := c.opts.limiter.(*rateLimiter)
	l.now, l.sleep = clock.Now, s.sleep
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatal(err)
	}
	// Three requests at one a second: the first is free, two wait.
	if len(s.waits) != 2 {
		t.Errorf("limiter waits = %v, want 2 (every attempt takes a turn)", s.waits)
	}
}

// manualClock is a clock whose sleepers wake only when the test advances
// it, so that concurrent waits on the limiter are deterministic.
type manualClock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers map[chan struct{}]time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: clockStart, sleepers: map[chan struct{}]time.Time{}}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) sleep(ctx context.Context, d time.Duration) error {
	ch := make(chan struct{})
	c.mu.Lock()
	c.sleepers[ch] = c.now.Add(d)
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.sleepers, ch)
		c.mu.Unlock()
		return ctx.Err()
	}
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for ch, at := range c.sleepers {
		if !at.After(c.now) {
			delete(c.sleepers, ch)
			close(ch)
		}
	}
}

func (c *manualClock) sleeping() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleepers)
}

// TestRateLimiterHoldsUnderCancellation: ten callers queue and cancel
// while ten others wait behind them and ten more come later. No second
// sees more than n + burst turns, and the cancelled callers' turns go to
// those behind them, not to anyone twice.
func TestRateLimiterHoldsUnderCancellation(t *testing.T) {
	const n = 10 // a second; burst 1
	l := newRateLimiter(n, time.Second)
	clock := newManualClock()
	l.now, l.sleep = clock.Now, clock.sleep

	var mu sync.Mutex
	var granted []time.Time
	var done atomic.Int64
	started := 0
	start := func(ctx context.Context) {
		started++
		go func() {
			if l.Wait(ctx) == nil {
				mu.Lock()
				granted = append(granted, clock.Now())
				mu.Unlock()
			}
			done.Add(1)
		}()
	}
	queued := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.queue)
	}
	// settle waits until every caller has either returned or is queued,
	// with the head asleep on the clock.
	settle := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			q := queued()
			if int(done.Load())+q == started && clock.sleeping() == min(q, 1) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("limiter did not settle: %d started, %d done, %d queued, %d sleeping", started, done.Load(), q, clock.sleeping())
			}
			time.Sleep(100 * time.Microsecond)
		}
	}

	start(context.Background()) // takes the burst at once
	settle()
	cancelCtx, cancel := context.WithCancel(context.Background())
	for range n {
		start(cancelCtx)
		settle()
	}
	for range n {
		start(context.Background())
		settle()
	}
	cancel()
	settle()
	for range n {
		start(context.Background())
		settle()
	}
	for range 400 { // 4 s in steps of 10 ms
		clock.Advance(10 * time.Millisecond)
		settle()
	}

	if got, want := len(granted), 1+2*n; got != want {
		t.Fatalf("%d turns granted, want %d", got, want)
	}
	for i, at := range granted {
		inWindow := 0
		for _, other := range granted[i:] {
			if other.Sub(at) < time.Second {
				inWindow++
			}
		}
		if inWindow > n+l.burst {
			t.Errorf("%d turns in the second from %v, want at most %d", inWindow, at.Sub(clockStart), n+l.burst)
		}
	}
	// The cancelled callers' turns were given back: the 20 that waited
	// were done within 2 s, not pushed behind turns nobody used.
	if last := granted[len(granted)-1].Sub(clockStart); last > 2*time.Second {
		t.Errorf("last turn at %v, want by 2s: cancelled turns were not given back", last)
	}
}

// TestNewRateLimiter: the exported constructor is the built-in limiter,
// and an unlimited one never waits.
func TestNewRateLimiter(t *testing.T) {
	if _, ok := NewRateLimiter(60, time.Minute).(*rateLimiter); !ok {
		t.Error("NewRateLimiter(60, time.Minute) is not the built-in limiter")
	}
	free := NewRateLimiter(0, time.Minute)
	for range 1000 {
		if err := free.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := free.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("unlimited Wait on a cancelled ctx = %v, want context.Canceled", err)
	}
}
