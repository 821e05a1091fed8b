package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-wxacode/wxacode"
)

// quotaGate pauses every worker after a quota error: the first pause is
// first, each further one (after the previous ended) twice as long, up to
// maxQuotaPause; a success resets it. Quota errors for giveUp with no
// success in between exhaust it. Its time is clock's.
type quotaGate struct {
	clock         Clock
	first, giveUp time.Duration

	mu        sync.Mutex
	until     time.Time // workers wait until here
	code      int       // the errcode of the pause under way
	pause     time.Duration
	since     time.Time // first quota error since the last success
	exhausted bool
}

// pausesRun reports whether err (an API error with errcode code) pauses
// every worker rather than failing the scene: the quota (45009, 45011),
// or a token endpoint answering -1 (busy), which would fail every scene
// alike.
func pausesRun(err error, code int) bool {
	switch code {
	case wxacode.CodeDailyQuotaExceeded, wxacode.CodeMinuteQuotaExceeded:
		return true
	case wxacode.CodeSystemBusy:
		var tokErr *wxacode.TokenError
		return errors.As(err, &tokErr)
	}
	return false
}

// pauseReason says why the workers pause, for the progress line.
func pauseReason(code int) string {
	if code == wxacode.CodeSystemBusy {
		return "a busy token endpoint (-1)"
	}
	return fmt.Sprintf("quota (%d)", code)
}

// wait returns once any pause is over, or false if ctx ended.
func (g *quotaGate) wait(ctx context.Context) bool {
	g.mu.Lock()
	d := g.until.Sub(g.clock.Now())
	g.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	return g.clock.Sleep(ctx, d) == nil
}

// trip records a quota error (errcode code) and starts a pause, unless one
// is running. It returns the pause's length, whether this call started it,
// and whether the quota is now taken to be exhausted.
func (g *quotaGate) trip(code int) (d time.Duration, started, exhausted bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	if g.since.IsZero() {
		g.since = now
	}
	if now.Sub(g.since) >= g.giveUp {
		g.exhausted = true
	}
	if now.Before(g.until) {
		return g.until.Sub(now), false, g.exhausted // the workers that hit the quota together share one pause
	}
	if g.pause == 0 {
		g.pause = g.first
	} else {
		g.pause = min(2*g.pause, maxQuotaPause)
	}
	g.until, g.code = now.Add(g.pause), code
	return g.pause, true, g.exhausted
}

// paused returns the errcode of the pause under way and how long it has to
// run, or ok false when the workers are not paused.
func (g *quotaGate) paused() (code int, left time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	left = g.until.Sub(g.clock.Now())
	return g.code, left, left > 0
}

// lastCode is the errcode of the last pause (0 if none).
func (g *quotaGate) lastCode() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.code
}

// success forgets earlier quota errors.
func (g *quotaGate) success() {
	g.mu.Lock()
	g.pause, g.since = 0, time.Time{}
	g.mu.Unlock()
}

func (g *quotaGate) isExhausted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.exhausted
}
