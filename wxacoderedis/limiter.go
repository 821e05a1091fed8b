package wxacoderedis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// fleetMemory is how long a Limiter that has not asked Redis for a turn
// still counts as one of the fleet that shares the quota.
const fleetMemory = 10 * time.Second

// fleetReport is how often a Limiter tells Redis it is one of the fleet.
const fleetReport = time.Second

// Limiter is a wxacode.Limiter shared by every process that uses the same
// Redis and name. It is safe for concurrent use.
type Limiter struct {
	rdb      redis.UniversalClient
	key      string
	keys     []string // key, as the scripts' KEYS (never changed)
	id       string   // this Limiter in the fleet
	n        int
	period   time.Duration
	interval int64 // µs a turn, rounded up
	offset   int64 // µs: the burst
	policy   fallback
	guard    *guard
	reserveS *script
	giveS    *script
	// interval and offset (µs) as script arguments, boxed once (boxing
	// an int64 allocates)
	intervalArg, offsetArg any

	mu        sync.Mutex
	queue     []*turn  // callers waiting for a reservation
	reservers int      // reservations in flight (at most maxReservers)
	fleet     int      // Limiters seen by the last reservation
	schedEnd  int64    // µs on Redis's clock: the last turn of the fleet's that this Limiter heard of
	lastTat   int64    // the quota's tat after this Limiter's last turn (µs)
	clock     clockMap // Redis's clock on this process's
	lastRTT   time.Duration
	born      int64       // the quota key's "born" in the last answer (µs)
	bornArg   any         // born as a script argument, boxed once
	answered  time.Time   // when the last answer came
	reported  time.Time   // when this Limiter last told Redis it is one of the fleet
	share     *shareEpoch // while Redis is out, and for a grace after
	spare     []spareTurn // turns whose callers left, by time
}

// NewLimiter returns a Limiter that every process sharing rdb and name
// draws from: together they send at most n requests per period, plus a
// burst of max(1, ceil(n/60)), the burst wxacode.WithRateLimit allows. Use
// the AppID as name: the API's quota (5000 calls a minute) is per mini
// program. While Redis does not answer, the Limiter paces this process to
// its share of n (see the package doc and WithFallback). n <= 0 or period
// <= 0 means no limit.
//
// It honours WithTimeout, WithPause, WithLogger and WithFallback.
func NewLimiter(rdb redis.UniversalClient, name string, n int, period time.Duration, opts ...Option) *Limiter {
	o := newOptions(opts)
	l := &Limiter{
		rdb:      rdb,
		key:      "wxacode:" + name + ":quota",
		id:       newID(),
		n:        n,
		period:   period,
		policy:   o.fallback,
		guard:    newGuard("limiter", rdb, o),
		reserveS: newScript(reserveLua),
		giveS:    newScript(giveBackLua),
	}
	if n > 0 && period > 0 {
		l.interval = max(1, (period.Nanoseconds()/int64(n)+999)/1000)
		l.offset = int64(max(1, (n+59)/60)) * l.interval
	}
	l.keys = []string{l.key}
	l.intervalArg, l.offsetArg = l.interval, l.offset
	return l
}

// newID returns a random id for a Limiter (16 hex digits).
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// errRedisOut is a reservation that Redis failed: the caller falls back.
var errRedisOut = errors.New("wxacoderedis: Redis is out")

// Wait blocks until this process may send a request, or ctx ends (then
// ctx's error). It asks Redis for a turn once, then sleeps until that turn
// in this process: callers that wait never poll Redis, and callers waiting
// together share one round trip. A caller whose ctx ends while it sleeps
// gives its turn back when no later turn was taken since (a turn not given
// back is lost: the fleet stays under the quota). A caller whose deadline
// comes before any turn it could have takes none and returns at its
// deadline.
//
// A Redis failure never reaches the caller: the fallback takes over (see
// WithFallback).
func (l *Limiter) Wait(ctx context.Context) error {
	if l.interval == 0 {
		return ctx.Err()
	}
	shared := false  // a turn of the fallback was taken
	retried := false // a turn was given up for lateness
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if ep := l.epoch(); ep != nil && !shared {
			got, err := ep.wait(ctx, l.guard)
			if err != nil {
				return err
			}
			shared = got
		}
		if !l.guard.up() {
			l.probe(ctx)
			if shared {
				return nil
			}
			l.fellBack()
			continue
		}
		err := l.redisTurn(ctx, !retried)
		if errors.Is(err, errLate) {
			retried = true
			continue
		}
		if errors.Is(err, errRedisOut) {
			if shared {
				return nil
			}
			continue
		}
		return err
	}
}

// probe asks Redis, in the background, whether it answers again, once the
// pause after a failure is over: callers never wait for a probe. A probe
// takes no turn; it tells Redis this Limiter is one of the fleet.
func (l *Limiter) probe(ctx context.Context) {
	u, ok := l.guard.admit()
	if !ok {
		return // not yet, or another caller probes
	}
	go func() {
		if _, err := l.ask(context.WithoutCancel(ctx), u, nil); err == nil {
			l.mu.Lock()
			l.recoveredLocked()
			l.mu.Unlock()
		}
	}()
}

// ask runs reserveLua for a turn for each caller of batch, within its
// deadline (batch is sorted first, see appendHorizons; nil: no turn), and
// reports the outcome to the guard; on an answer, it learns the fleet's
// size and Redis's clock.
func (l *Limiter) ask(ctx context.Context, u use, batch []*turn) (reservation, error) {
	l.mu.Lock()
	lead := l.lastRTT.Microseconds() / 2
	id, reported := "", l.reported
	if now := time.Now(); now.Sub(l.reported) >= fleetReport {
		id, l.reported = l.id, now
	}
	floor := int64(0) // the quota's tat after the fleet's last turn heard of
	if l.schedEnd > 0 {
		floor = l.schedEnd + l.offset
	}
	// The call that finds Redis back (the probe) charges the turns this
	// process granted alone in the last period: the replicas that had not
	// noticed the outage would otherwise be given them again. One period
	// holds at most perPeriod of them.
	var debtor *shareEpoch
	var owed int64
	if ep := l.share; u.probe && ep != nil && ep.local != nil {
		debtor, owed = ep, min(ep.granted.Load(), ep.perPeriod)
	}
	// The key lives at least fleetMemory after each Limiter's report (at
	// most fleetReport apart): if it changed since an answer this recent,
	// Redis lost it.
	var born any = 0 // none
	if l.born != 0 && time.Since(l.answered) < fleetMemory-2*fleetReport {
		born = l.bornArg
	}
	l.mu.Unlock()
	args := make([]any, 0, 7+len(batch)) // one allocation for the arguments and the horizons
	args = append(args, l.intervalArg, l.offsetArg, id, lead, floor, owed*l.interval, born)
	args = appendHorizons(args, batch, time.Now())
	v, tm, err := l.reserveS.runTimed(ctx, l.guard, l.rdb, l.keys, args...)
	var r reservation
	if err == nil {
		r, err = parseReservation(v)
	}
	l.guard.report(ctx, u, err)
	if err != nil && id != "" {
		// not reported: the next call reports (and sets the key's life)
		l.mu.Lock()
		l.reported = reported
		l.mu.Unlock()
	}
	if err == nil && debtor != nil {
		debtor.granted.Store(0) // charged (those granted meanwhile are Redis's too: the grace takes both)
	}
	if err == nil {
		l.mu.Lock()
		// A call that reported this Limiter is told the fleet exactly; one
		// that did not, the count of the last call that reported one (at
		// most a second or so old), which only raises the count. A key
		// made anew counts only the Limiters that asked since: the share
		// keeps to the fleet heard of before.
		if r.fleet > 0 && !r.lost && (id != "" || int(r.fleet) > l.fleet) {
			l.fleet = int(r.fleet)
		}
		l.clock.sample(tm.sent, tm.received, r.now)
		if r.lost {
			// Redis restarted empty: the other replicas may be pacing
			// themselves alone still, and Redis knows nothing of it. Keep to
			// this process's share too, for the grace, as after an outage.
			l.fellBackLocked()
			l.recoveredLocked()
		}
		l.schedEnd = max(l.schedEnd, r.tat-l.offset)
		l.lastRTT = tm.received.Sub(tm.sent)
		if r.born != l.born {
			l.born, l.bornArg = r.born, r.born
		}
		l.answered = tm.received
		l.mu.Unlock()
	}
	return r, err
}

// turn is one caller's place in the queue for a reservation.
type turn struct {
	deadline time.Time // zero: none
	ready    chan struct{}
	// set before ready is closed, with l.mu held:
	out bool  // Redis failed
	ok  bool  // a turn was reserved
	at  int64 // when it may go, µs on Redis's clock
	tat int64 // the quota's tat right after this turn (µs)
	// guarded by l.mu:
	gone bool // the caller left
}

// redisTurn queues for a reservation and sleeps until the turn. With late
// set, a turn woken up for too late is given up (errLate).
func (l *Limiter) redisTurn(ctx context.Context, late bool) error {
	t := &turn{ready: make(chan struct{})}
	t.deadline, _ = ctx.Deadline()
	l.mu.Lock()
	if sp, ok := l.takeSpareLocked(t.deadline); ok {
		l.mu.Unlock()
		t.ok, t.at, t.tat = true, sp.at, sp.tat
		return l.sleepUntil(ctx, t, late)
	}
	if !t.deadline.IsZero() && l.schedEnd > 0 && l.clock.local(l.schedEnd+l.interval).After(t.deadline) &&
		time.Since(l.answered) < fleetReport {
		// The fleet's turns already reach past this caller's deadline
		// (they only grow, but for turns given back): no turn can come
		// in time, and asking would only cost a round trip. Once a
		// second the caller asks anyway: a process whose callers all
		// give up so would otherwise hear nothing of the fleet (its size,
		// its schedule, a Redis that lost its state), which its fallback
		// needs.
		l.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	l.queue = append(l.queue, t)
	serve := l.reservers < maxReservers
	if serve {
		l.reservers++
	}
	l.mu.Unlock()
	if serve {
		l.serve(context.WithoutCancel(ctx))
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		l.mu.Lock()
		t.gone = true
		assigned := isClosed(t.ready) && t.ok
		l.mu.Unlock()
		if assigned {
			l.release(context.WithoutCancel(ctx), t)
		}
		return ctx.Err()
	}
	switch {
	case t.out:
		return errRedisOut
	case !t.ok: // no turn before the deadline
		<-ctx.Done()
		return ctx.Err()
	}
	return l.sleepUntil(ctx, t, late)
}

// sleepUntil sleeps until t's turn by the best mapping of Redis's clock
// known when waking (a later answer with a shorter round trip may correct
// it). A caller that leaves first releases the turn.
//
// Only a caller that slept can wake late: a turn already due when handed
// over goes at once (its reservation's lead was short), and is never
// given up, so that a fast Redis and a high limit cost one reservation a
// turn.
func (l *Limiter) sleepUntil(ctx context.Context, t *turn, late bool) error {
	slept := false
	for {
		due := l.localTime(t.at)
		d := time.Until(due)
		if d <= 0 {
			if late && slept && time.Since(due) > l.lateness() {
				return errLate
			}
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			l.release(context.WithoutCancel(ctx), t)
			return err
		}
		slept = true
	}
}

// errLate is a turn this process woke up for too late to use.
var errLate = errors.New("wxacoderedis: woke too late for the turn")

// lateness is how late a turn may be used: a quarter of a turn's
// interval. A
// caller that wakes later (a pause of the collector, a busy machine) would
// send together with the next turn, anyone's, so it gives the turn up
// and asks for another, once per Wait: under the quota, never over.
func (l *Limiter) lateness() time.Duration {
	return time.Duration(l.interval) * time.Microsecond / 4
}

// localTime maps a time of Redis's clock (µs) to this process's.
func (l *Limiter) localTime(us int64) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clock.local(us)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// maxReservers is how many reservations a Limiter has in flight at most:
// two, so that callers who come while one is on its way need not wait a
// whole round trip for it before theirs leaves (Redis runs each script
// alone, so two are as safe as one).
const maxReservers = 2

// serve reserves turns for the callers queued, all of them in one script
// call, holding one of the maxReservers places. The caller that found a
// place free serves in its own goroutine (its own turn is in the batch);
// if callers queued meanwhile, a goroutine goes on serving them. ctx
// carries the first caller's values, never its end.
func (l *Limiter) serve(ctx context.Context) {
	l.mu.Lock()
	var batch []*turn
	for _, t := range l.queue {
		if !t.gone {
			batch = append(batch, t)
		}
	}
	l.queue = nil
	if len(batch) == 0 {
		l.reservers--
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.reserveFor(ctx, batch)
	l.mu.Lock()
	more := len(l.queue) > 0
	if !more {
		l.reservers--
	}
	l.mu.Unlock()
	if more {
		go l.serve(ctx)
	}
}

// appendHorizons sorts batch by deadline, earliest first (none last), and
// appends to args how far ahead (µs) each caller's turn may be: up to its
// deadline, or -1 for none.
func appendHorizons(args []any, batch []*turn, now time.Time) []any {
	slices.SortStableFunc(batch, func(a, b *turn) int {
		switch {
		case a.deadline.IsZero() || b.deadline.IsZero():
			return cmp.Compare(boolInt(a.deadline.IsZero()), boolInt(b.deadline.IsZero()))
		default:
			return a.deadline.Compare(b.deadline)
		}
	})
	for _, t := range batch {
		if t.deadline.IsZero() {
			args = append(args, int64(-1)) // a constant: boxed without allocating
			continue
		}
		args = append(args, max(0, t.deadline.Sub(now).Microseconds()))
	}
	return args
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reserveFor reserves one turn for each caller of batch (those whose
// deadline allows) in one script call.
func (l *Limiter) reserveFor(ctx context.Context, batch []*turn) {
	l.mu.Lock()
	measured := l.lastRTT > 0
	l.mu.Unlock()
	u, ok := l.guard.admit()
	var err error
	var r reservation
	if !ok {
		err = errRedisOut // it failed since these callers queued
	} else if !measured {
		// The first use measures the round trip and Redis's clock, with
		// no turn taken: turns due before their answer arrives would go
		// late, bunched with the next (see reserveLua's lead).
		r, err = l.ask(ctx, u, nil)
	}
	if err == nil && !r.lost {
		r, err = l.ask(ctx, u, batch)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.fellBackLocked()
	}
	if err != nil || r.lost {
		// Out, or back after losing its state (see ask): every caller
		// waiting goes through the fallback, which keeps to this
		// process's share, before Redis gives it a turn.
		for _, t := range append(batch, l.queue...) {
			t.out = true
			close(t.ready)
		}
		l.queue = nil
		return
	}
	l.recoveredLocked()
	var unused []spareTurn // turns since the last one a caller will use
	for i, t := range batch {
		at := r.ats[i]
		if at == 0 {
			close(t.ready) // no turn within its deadline
			continue
		}
		t.ok, t.at, t.tat = true, at, at+l.offset
		if !t.deadline.IsZero() && l.clock.local(at).After(t.deadline) {
			t.ok = false // it would wake after its deadline
		}
		if t.gone || !t.ok {
			unused = append(unused, spareTurn{t.at, t.tat})
		} else {
			l.addSpareLocked(unused...)
			unused = nil
		}
		l.lastTat = t.tat
		close(t.ready)
	}
	if len(unused) > 0 {
		go l.giveBack(ctx, unused)
	}
}

// reservation is reserveLua's answer.
type reservation struct {
	fleet, tat, now int64
	ats             []int64 // each caller's turn, µs on Redis's clock; 0: none (the turns taken are the others)
	lost            bool    // Redis had lost the quota's state
	born            int64   // when the quota's key was made (µs)
}

// errBadAnswer is an answer of reserveLua's that it never gives (another
// script under its digest?).
var errBadAnswer = errors.New("wxacoderedis: unexpected answer of the quota script")

// parseReservation reads reserveLua's answer: the turns taken, the
// fleet, tat, Redis's clock, lost, born, then each caller's turn.
func parseReservation(v any) (reservation, error) {
	vals, _ := v.([]any)
	if len(vals) < 6 {
		return reservation{}, errBadAnswer
	}
	var head [6]int64
	for i := range head {
		n, ok := vals[i].(int64)
		if !ok {
			return reservation{}, errBadAnswer
		}
		head[i] = n
	}
	r := reservation{fleet: head[1], tat: head[2], now: head[3], lost: head[4] == 1, born: head[5], ats: make([]int64, len(vals)-6)}
	for i, a := range vals[6:] {
		at, ok := a.(int64)
		if !ok {
			return reservation{}, errBadAnswer
		}
		r.ats[i] = at
	}
	return r, nil
}

// clockMap maps Redis's clock to this process's, NTP-style: Redis read
// its clock about halfway between sending and receiving, and the sample
// with the shortest round trip is the most exact (on a loopback or a LAN,
// within a fraction of a millisecond). Mapping each turn to local time by
// when its answer arrived instead would shift a batch late by however long
// the answer took, and two replicas' turns into each other.
//
// A better sample may move the mapping. Later is safe (turns spread out)
// and is taken at once; earlier would bunch the turns already mapped with
// the next ones, so the mapping slews there at most 1% of the time that
// passes (as NTP slews a clock): a window of turns shrinks by 1% at most.
type clockMap struct {
	origin  time.Time // first sample's local time; offsets are µs from it
	offset  int64     // applied: local µs since origin = Redis µs + offset
	target  int64     // the best sample's offset
	rtt     time.Duration
	sampled time.Time // when the best sample was taken
	slewed  time.Time // when offset last moved toward target
}

// clockSampleLife is how long the best sample is kept before any newer
// one replaces it (clocks drift, and Redis may fail over to another host).
const clockSampleLife = 10 * time.Second

// maxSlew is how much the mapping may move earlier per unit of time.
const maxSlew = 0.002

func (c *clockMap) sample(sent, received time.Time, redis int64) {
	rtt := received.Sub(sent)
	mid := sent.Add(rtt / 2)
	if c.origin.IsZero() {
		c.origin, c.slewed = mid, mid
		c.offset, c.target, c.rtt, c.sampled = -redis, -redis, rtt, received
		return
	}
	if rtt > c.rtt && received.Sub(c.sampled) <= clockSampleLife {
		return // the best sample is better
	}
	c.target, c.rtt, c.sampled = mid.Sub(c.origin).Microseconds()-redis, rtt, received
	c.slew(received)
}

// slew moves the applied offset toward the target: later at once, earlier
// by at most maxSlew of the time since it last moved.
func (c *clockMap) slew(now time.Time) {
	elapsed := now.Sub(c.slewed).Microseconds()
	c.slewed = now
	switch {
	case c.target >= c.offset:
		c.offset = c.target
	default:
		c.offset = max(c.target, c.offset-int64(float64(elapsed)*maxSlew))
	}
}

// local returns the local time at which Redis's clock reads us (µs).
func (c *clockMap) local(us int64) time.Time {
	if c.offset != c.target {
		c.slew(time.Now())
	}
	return c.origin.Add(time.Duration(us+c.offset) * time.Microsecond)
}

// giveBack gives turns (the last ones this Limiter took, in order) back
// to the quota if no turn was taken after them since (best effort,
// bounded like any command); otherwise they become spare turns of this
// process.
func (l *Limiter) giveBack(ctx context.Context, turns []spareTurn) {
	last := turns[len(turns)-1].tat
	l.mu.Lock()
	mine := l.lastTat == last
	l.mu.Unlock()
	if mine {
		v, err := l.giveS.run(ctx, l.guard, l.rdb, l.keys, last, len(turns), l.interval)
		if n, _ := v.(int64); err == nil && n == 1 {
			l.mu.Lock()
			if l.lastTat == last {
				l.lastTat = turns[0].at + l.offset - l.interval
			}
			l.mu.Unlock()
			return
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addSpareLocked(turns...)
}
