package wxacoderedis

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-wxacode/wxacode"
)

// fallback is what a Limiter does while Redis is out (WithFallback).
type fallback struct {
	set    bool // WithFallback was given
	n      int  // <= 0: wait for Redis
	period time.Duration
}

// shareEpoch is a time in which this process paces itself alone: while
// Redis is out, and for a grace after it answers again (see
// recoveredLocked).
type shareEpoch struct {
	local wxacode.Limiter // nil: wait for Redis (fail closed)
	after time.Time       // no local turn before: the last turn of the fleet's this process heard of
	ctx   context.Context // ends with the epoch
	end   context.CancelFunc
	timer *time.Timer // ends the epoch after the grace, once Redis answers
	// granted counts the turns taken alone and not yet charged to Redis
	// (see Limiter.ask): Redis never heard of them.
	granted   atomic.Int64
	perPeriod int64 // the local limit's turns a period, the most one period holds
}

// epoch returns the epoch in force, if any.
func (l *Limiter) epoch() *shareEpoch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.share
}

func (l *Limiter) fellBack() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fellBackLocked()
}

// fellBackLocked starts an epoch of pacing alone, or keeps the one in
// force (stopping its grace: Redis failed again).
func (l *Limiter) fellBackLocked() {
	if ep := l.share; ep != nil {
		if ep.timer != nil {
			ep.timer.Stop()
			ep.timer = nil
		}
		return
	}
	ep := &shareEpoch{}
	ep.local, ep.perPeriod = l.fallbackLimiter()
	if l.schedEnd > 0 {
		ep.after = l.clock.local(l.schedEnd)
	}
	ep.ctx, ep.end = context.WithCancel(context.Background())
	l.share = ep
}

// fallbackLimiter builds the local limiter of an epoch: WithFallback's, or
// this process's share of n, n divided by the Limiters that Redis last
// said share the quota (this one alone if it never reached Redis).
func (l *Limiter) fallbackLimiter() (wxacode.Limiter, int64) {
	if l.policy.set {
		if l.policy.n <= 0 || l.policy.period <= 0 {
			return nil, 0
		}
		perPeriod := int64(float64(l.policy.n) * float64(l.period) / float64(l.policy.period))
		return wxacode.NewRateLimiter(l.policy.n, l.policy.period), perPeriod + 1
	}
	share := max(1, l.n/max(1, l.fleet))
	return wxacode.NewRateLimiter(share, l.period), int64(share) + 1
}

// recoveredLocked is called when Redis granted turns: an epoch in force
// ends after a grace of one pause and one period. Until then, turns are
// taken from both the local limiter and Redis: the other replicas may not
// have seen Redis answer yet (they try once a pause) and what they granted
// alone in the last period is unknown to Redis, so taking all of n at once
// would send their shares twice. A fleet that waited for Redis granted
// nothing alone and needs no grace.
func (l *Limiter) recoveredLocked() {
	ep := l.share
	if ep == nil || ep.timer != nil {
		return
	}
	grace := l.guard.pause + l.period
	if ep.local == nil {
		grace = 0
	}
	ep.timer = time.AfterFunc(grace, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.share == ep && ep.timer != nil {
			l.share = nil
			ep.end()
		}
	})
}

// wait takes a turn of the epoch's local limiter, after the last turn
// Redis had given the fleet when this process last heard from it: turns
// the replicas reserved before Redis went out are still taken, and local
// turns on top of them would send the fleet's quota twice. It reports false, and no error, when the epoch
// ended first (Redis is back), or for a fail-closed epoch when Redis may be
// tried again.
func (ep *shareEpoch) wait(ctx context.Context, g *guard) (bool, error) {
	if ep.local == nil {
		return false, g.waitChange(ctx, ep.ctx.Done())
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ep.ctx, cancel)
	defer stop()
	if err := sleep(lctx, time.Until(ep.after)); err == nil {
		err = ep.local.Wait(lctx)
		if err == nil {
			ep.granted.Add(1)
			return true, nil
		}
	}
	return false, ctx.Err()
}
