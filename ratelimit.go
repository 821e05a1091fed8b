package wxacode

import (
	"context"
	"sync"
	"time"

	"github.com/go-wxacode/wxacode/internal/wait"
)

// Limiter paces a Client's requests: Wait blocks until the next request
// may be sent, or returns ctx's error. *rate.Limiter
// (golang.org/x/time/rate) implements it, and so does
// wxacoderedis.Limiter, which shares one quota between processes.
type Limiter interface {
	Wait(ctx context.Context) error
}

// WithLimiter makes a Client wait on l before each getwxacodeunlimit
// request, retries included. An error from Wait that is not the context's
// ends the call with a *LimiterError: nothing is sent and it is not
// retried. WithLimiter and WithRateLimit replace each other (the last one
// given wins); a nil l, or one holding a nil pointer, means no limit. Clients honour it;
// NewStableTokenSource ignores it: token requests are not counted.
func WithLimiter(l Limiter) Option {
	return func(o *options) { o.limiter = l }
}

// WithRateLimit makes a Client send at most n getwxacodeunlimit requests per
// period (retries included), waiting on the call's context for its turn.
// The API allows 5000 calls a minute per account, so
// WithRateLimit(4500, time.Minute) keeps a margin for other callers.
//
// The limiter is a token bucket shared by every goroutine using the Client.
// It allows a burst of a sixtieth of n (at least 1): one second's worth
// for a per-minute limit, so no window of length period sees more than n
// plus that burst. Callers wait
// in arrival order; a call whose context ends while it waits returns the
// context's error having used no turn, so a turn is never given twice.
// n <= 0 or period <= 0 means no limit (the default). Clients honour it;
// NewStableTokenSource ignores it: token requests are not counted. It is
// WithLimiter with the built-in limiter: the last of the two given wins.
func WithRateLimit(n int, period time.Duration) Option {
	return func(o *options) {
		o.limiter = nil
		if l := newRateLimiter(n, period); l != nil {
			o.limiter = l
		}
	}
}

// NewRateLimiter returns the limiter WithRateLimit(n, period) builds, for
// use with WithLimiter: to share one between several Clients, or as the
// fallback of a shared limiter (wxacoderedis uses it when Redis does not
// answer). n <= 0 or period <= 0 returns a Limiter that never waits.
func NewRateLimiter(n int, period time.Duration) Limiter {
	if l := newRateLimiter(n, period); l != nil {
		return l
	}
	return noLimit{}
}

// noLimit is a Limiter that lets every request go at once.
type noLimit struct{}

func (noLimit) Wait(ctx context.Context) error { return ctx.Err() }

// rateLimiter is a token bucket in its GCRA form: it tracks the time at
// which the bucket would be full again (tat), so each turn is one
// addition. Callers that must wait queue in order; only the head of the
// queue waits for a turn, and a turn is taken (tat moved) only when it is
// granted. A caller whose context ends while queued so leaves without ever
// having taken one: later callers move up, and no interval of the period
// sees more than n plus the burst, whoever cancels.
type rateLimiter struct {
	interval time.Duration // one request's share of the period
	burst    int
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	tat   time.Time     // theoretical arrival time of the next request
	queue []*rateWaiter // callers waiting, in arrival order; [0] is the head
}

// rateWaiter is one queued caller; head is closed when it reaches the
// head of the queue.
type rateWaiter struct{ head chan struct{} }

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
		sleep:    wait.For,
	}
}

// Wait blocks until the caller may send, or ctx ends.
func (l *rateLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	if len(l.queue) == 0 && l.delayLocked() <= 0 {
		l.takeLocked()
		l.mu.Unlock()
		return nil
	}
	w := &rateWaiter{head: make(chan struct{})}
	l.queue = append(l.queue, w)
	if len(l.queue) == 1 {
		close(w.head)
	}
	l.mu.Unlock()

	select {
	case <-w.head:
	case <-ctx.Done():
		l.leave(w)
		return ctx.Err()
	}
	for {
		l.mu.Lock()
		d := l.delayLocked()
		if d <= 0 {
			l.takeLocked()
			l.leaveLocked(w)
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		if err := l.sleep(ctx, d); err != nil {
			l.leave(w)
			return err
		}
	}
}

// delayLocked is how long until the next turn is free.
func (l *rateLimiter) delayLocked() time.Duration {
	now := l.now()
	tat := l.tat
	if tat.Before(now) {
		tat = now
	}
	return tat.Sub(now) - time.Duration(l.burst-1)*l.interval
}

// takeLocked takes the next turn.
func (l *rateLimiter) takeLocked() {
	if now := l.now(); l.tat.Before(now) {
		l.tat = now
	}
	l.tat = l.tat.Add(l.interval)
}

func (l *rateLimiter) leave(w *rateWaiter) {
	l.mu.Lock()
	l.leaveLocked(w)
	l.mu.Unlock()
}

// leaveLocked removes w from the queue; if w was the head, the next caller
// becomes the head.
func (l *rateLimiter) leaveLocked(w *rateWaiter) {
	for i, q := range l.queue {
		if q != w {
			continue
		}
		l.queue = append(l.queue[:i], l.queue[i+1:]...)
		if i == 0 && len(l.queue) > 0 {
			close(l.queue[0].head)
		}
		return
	}
}
