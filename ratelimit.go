package wxacode

import (
	"context"
	"sync"
	"time"
)

// WithRateLimit makes a Client send at most n getwxacodeunlimit requests per
// period (retries included), waiting on the call's context for its turn.
// The API allows 5000 calls a minute per account, so
// WithRateLimit(4500, time.Minute) keeps a margin for other callers.
//
// The limiter is a token bucket shared by every goroutine using the Client.
// It allows a burst of a sixtieth of n (at least 1): one second's worth
// for a per-minute limit, so no window of length period sees more than n
// plus that burst. A
// call whose context ends while it waits returns the context's error and
// gives its turn back. n <= 0 or period <= 0 means no limit (the default).
// Token requests are not counted.
func WithRateLimit(n int, period time.Duration) Option {
	return func(o *options) {
		o.rateN, o.ratePeriod = n, period
	}
}

// rateLimiter is a token bucket in its GCRA form: it tracks the time at
// which the bucket would be full again, so each wait is one subtraction.
type rateLimiter struct {
	interval time.Duration // one request's share of the period
	burst    int
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex
	next time.Time // theoretical arrival time of the next request
}

// newRateLimiter returns nil (no limit) unless n and period are positive.
func newRateLimiter(n int, period time.Duration) *rateLimiter {
	if n <= 0 || period <= 0 {
		return nil
	}
	burst := max(1, (n+59)/60) // a sixtieth of the period's allowance, rounded up
	return &rateLimiter{
		interval: period / time.Duration(n),
		burst:    burst,
		now:      time.Now,
		sleep:    sleepContext,
	}
}

// wait blocks until the caller may send, or ctx ends.
func (l *rateLimiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := l.now()
	tat := l.next
	if tat.Before(now) {
		tat = now
	}
	d := tat.Sub(now) - time.Duration(l.burst-1)*l.interval
	l.next = tat.Add(l.interval)
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	if err := l.sleep(ctx, d); err != nil {
		l.mu.Lock()
		l.next = l.next.Add(-l.interval) // give the turn back
		l.mu.Unlock()
		return err
	}
	return nil
}

// sleepContext waits d, or returns ctx's error as soon as ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
