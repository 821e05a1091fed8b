package wxacode

import (
	"context"
	"errors"
	"net/http"
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
		if err := l.wait(context.Background()); err != nil {
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
		if err := l.wait(context.Background()); err != nil {
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
	_ = l.wait(context.Background()) // uses the burst
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	_ = l.wait(context.Background())
	if len(s.waits) != 1 || s.waits[0] != time.Second {
		t.Errorf("waits = %v, want one of 1s: the cancelled call gave its turn back", s.waits)
	}
}

func TestNoRateLimitByDefault(t *testing.T) {
	if NewClient(StaticToken("x")).limiter != nil {
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
	c.limiter.now, c.limiter.sleep = clock.Now, s.sleep
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatal(err)
	}
	// Three requests at one a second: the first is free, two wait.
	if len(s.waits) != 2 {
		t.Errorf("limiter waits = %v, want 2 (every attempt takes a turn)", s.waits)
	}
}
