package wxacoderedis

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// errTimeout is the error of a Redis call that ran out of its time.
var errTimeout = errors.New("wxacoderedis: Redis did not answer in time")

// guard bounds Redis calls in time and keeps callers away from a Redis that
// failed, for a pause.
type guard struct {
	what    string // "limiter" or "cache", for the logs
	timeout time.Duration
	pause   time.Duration
	logger  *slog.Logger
	now     func() time.Time

	mu        sync.Mutex
	downUntil time.Time // no Redis call before this
	down      bool      // failed, and not yet answered again
}

func newGuard(what string, o options) *guard {
	return &guard{what: what, timeout: o.timeout, pause: o.pause, logger: o.logger, now: time.Now}
}

// paused reports whether Redis is being left alone after a failure.
func (g *guard) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now().Before(g.downUntil)
}

// failed starts a pause, and logs if Redis was answering until now.
func (g *guard) failed(ctx context.Context, err error) {
	g.mu.Lock()
	g.downUntil = g.now().Add(g.pause)
	wasUp := !g.down
	g.down = true
	g.mu.Unlock()
	if wasUp && g.logger != nil {
		g.logger.LogAttrs(ctx, slog.LevelWarn, "wxacoderedis: Redis is not answering; the "+g.what+" works without it until it does",
			slog.String("error", err.Error()), slog.Duration("retry_every", g.pause))
	}
}

// answered records a call that worked, and logs if Redis was down.
func (g *guard) answered(ctx context.Context) {
	g.mu.Lock()
	wasDown := g.down
	g.down = false
	g.mu.Unlock()
	if wasDown && g.logger != nil {
		g.logger.LogAttrs(ctx, slog.LevelInfo, "wxacoderedis: Redis answers again; the "+g.what+" uses it")
	}
}

// call runs fn with a context bounded by the guard's timeout and returns
// when fn does or the time is up, whichever is first: fn keeps running in
// its goroutine until go-redis gives up on it, but nobody waits for it.
// A failure (not one of ctx's: the caller leaving says nothing about
// Redis) starts a pause. ctx's own error is returned as it is.
func call[T any](ctx context.Context, g *guard, fn func(ctx context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		v, err := fn(cctx)
		done <- result{v, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-cctx.Done():
		r.err = errTimeout
	}
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	if r.err != nil {
		g.failed(ctx, r.err)
		return r.v, r.err
	}
	g.answered(ctx)
	return r.v, nil
}
