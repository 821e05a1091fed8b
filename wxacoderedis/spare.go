package wxacoderedis

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// spareTurn is a turn reserved for a caller that left before it came
// (its context ended; the shared call of wxacode.WithCache, which has no
// deadline of its own, ends when its last caller leaves). The next caller
// of this process takes it without asking Redis, so a turn of the quota is
// not lost, nor does the quota's schedule run ahead of the callers using
// it.
type spareTurn struct {
	at  int64 // µs on Redis's clock
	tat int64 // the quota's tat right after it (µs)
}

// takeSpareLocked takes the earliest spare turn that is still to come (or
// late by less than lateness) and, with a deadline, comes before it;
// spare turns already past are dropped.
func (l *Limiter) takeSpareLocked(deadline time.Time) (spareTurn, bool) {
	now := time.Now()
	for len(l.spare) > 0 && now.Sub(l.clock.local(l.spare[0].at)) > l.lateness() {
		l.spare = l.spare[1:]
	}
	if len(l.spare) == 0 || (!deadline.IsZero() && l.clock.local(l.spare[0].at).After(deadline)) {
		return spareTurn{}, false
	}
	sp := l.spare[0]
	l.spare = l.spare[1:]
	return sp, true
}

// release returns the turn of a caller that left: to Redis when no turn
// was taken after it, else to this process's spare turns (giveBack).
func (l *Limiter) release(ctx context.Context, t *turn) {
	go l.giveBack(ctx, []spareTurn{{t.at, t.tat}})
}

// addSpareLocked adds turns to the spare ones, kept in order of time.
func (l *Limiter) addSpareLocked(turns ...spareTurn) {
	for _, sp := range turns {
		i, _ := slices.BinarySearchFunc(l.spare, sp.at, func(s spareTurn, at int64) int { return cmp.Compare(s.at, at) })
		l.spare = slices.Insert(l.spare, i, sp)
	}
}
