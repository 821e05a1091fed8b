package wxacoderedis

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// errTimeout is the error of a Redis command that ran out of its time.
var errTimeout = errors.New("wxacoderedis: Redis did not answer in time")

// guard bounds Redis commands in time, keeps callers away from a Redis
// that failed for a pause (one caller at a time probes it after), and logs
// each kind of failure once.
type guard struct {
	what    string // "limiter" or "cache", for the logs
	timeout time.Duration
	setup   time.Duration // dialling and connection set-up
	pause   time.Duration
	logger  *slog.Logger
	now     func() time.Time
	// direct: the client bounds its commands by their context's deadline
	// (see honoursDeadlines), so a command needs no goroutine of its own
	direct bool
	runner *runner // runs the commands that need a goroutine

	mu        sync.Mutex
	down      bool      // failed, and not yet answered again
	downUntil time.Time // no command before this, but a probe's
	probing   bool      // a caller is trying Redis after a pause
	epoch     uint64    // failures so far: a use admitted before the last one says nothing new
	logged    string    // kind of the last failure logged; "" once Redis answers
	refusedW  string    // kind of the last refused write logged; "" once a write succeeds
	changed   chan struct{}
}

// setupBound is how long dialling and setting up a connection may take
// (HELLO, AUTH, CLIENT SETINFO: several round trips), apart from the
// command's own bound: a slow Redis is not a dead one.
func setupBound(timeout time.Duration) time.Duration { return max(500*time.Millisecond, 2*timeout) }

func newGuard(what string, rdb redis.UniversalClient, o options) *guard {
	return &guard{what: what, timeout: o.timeout, setup: setupBound(o.timeout), pause: o.pause, logger: o.logger,
		now: time.Now, changed: make(chan struct{}), direct: honoursDeadlines(rdb), runner: newRunner(workerIdle)}
}

// honoursDeadlines reports whether rdb ends a command (its dial, its wait
// for a connection, its write and its read) at its context's deadline:
// go-redis does with ContextTimeoutEnabled set, and otherwise bounds reads
// and writes by ReadTimeout and WriteTimeout alone (3 s by default).
func honoursDeadlines(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// use is one admitted use of Redis, to report.
type use struct {
	epoch uint64
	probe bool
}

// admit reports whether the caller may use Redis now: always while it
// answers; after a failure, once the pause is over, for one caller at a
// time (the probe), whose report ends the probe.
func (g *guard) admit() (use, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.down {
		return use{epoch: g.epoch}, true
	}
	if g.probing || g.now().Before(g.downUntil) {
		return use{}, false
	}
	g.probing = true
	return use{epoch: g.epoch, probe: true}, true
}

// current reports whether no failure was reported since u was admitted.
func (g *guard) current(u use) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return u.epoch == g.epoch
}

// up reports whether Redis answered the last use.
func (g *guard) up() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down
}

// waitChange waits until Redis may be tried again: at once while it
// answers or when the pause is over and nobody probes it, else until the
// pause ends or the probe ends. It returns early when ctx or stop ends.
func (g *guard) waitChange(ctx context.Context, stop <-chan struct{}) error {
	g.mu.Lock()
	ch, probing := g.changed, g.probing
	d := g.downUntil.Sub(g.now())
	idle := !g.down || (!probing && d <= 0)
	g.mu.Unlock()
	if idle {
		return ctx.Err()
	}
	var timeout <-chan time.Time
	if !probing {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
	case <-stop:
	case <-timeout:
	}
	return nil
}

func (g *guard) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// report records the outcome of a use of Redis: nil is an answer; any
// other error starts a pause and is logged once per kind (see kindOf). A
// use admitted before the last failure counts for nothing: its success
// does not end an outage (only a later use, the probe, does) and its
// failure does not start another pause.
func (g *guard) report(ctx context.Context, u use, err error) {
	g.mu.Lock()
	if u.probe {
		g.probing = false
		g.broadcast()
	}
	if u.epoch != g.epoch || (err != nil && ctx.Err() != nil) {
		// stale, or the caller left: that says nothing of Redis
		g.mu.Unlock()
		return
	}
	if err == nil {
		wasDown := g.down
		g.down = false
		if wasDown {
			g.logged = ""
		}
		g.mu.Unlock()
		if wasDown {
			g.log(ctx, slog.LevelInfo, "wxacoderedis: Redis answers again; the "+g.what+" uses it")
		}
		return
	}
	g.down = true
	g.epoch++
	g.downUntil = g.now().Add(g.pause)
	g.broadcast()
	g.mu.Unlock()
	g.refused(ctx, err)
}

// refused logs err once per kind, until Redis answers after a pause or
// the kind changes.
func (g *guard) refused(ctx context.Context, err error) {
	kind := kindOf(err)
	g.mu.Lock()
	again := g.logged == kind
	g.logged = kind
	g.mu.Unlock()
	if !again {
		g.logFailure(ctx, kind, err)
	}
}

// wrote records the outcome of a write that Redis answered: a write
// refused because Redis is full (OOM) is not an outage, since reads go on,
// so it starts no pause; it is logged once until a write succeeds.
func (g *guard) wrote(ctx context.Context, err error) {
	kind := ""
	if err != nil {
		kind = kindOf(err)
	}
	g.mu.Lock()
	again := g.refusedW == kind
	g.refusedW = kind
	g.mu.Unlock()
	if err != nil && !again {
		g.logFailure(ctx, kind, err)
	}
}

func (g *guard) logFailure(ctx context.Context, kind string, err error) {
	if kind == kindNoAnswer {
		g.log(ctx, slog.LevelWarn, "wxacoderedis: Redis is not answering; the "+g.what+" works without it until it does",
			slog.String("error", err.Error()), slog.Duration("retry_every", g.pause))
		return
	}
	g.log(ctx, slog.LevelError, "wxacoderedis: Redis refused the "+g.what+"'s command: "+err.Error(),
		slog.String("error", err.Error()), slog.String("kind", kind))
}

func (g *guard) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if g.logger != nil {
		g.logger.LogAttrs(ctx, level, msg, attrs...)
	}
}

// kindNoAnswer is the kind of every failure in which Redis said nothing:
// refused or cut connections, timeouts.
const kindNoAnswer = "no answer"

// kindOf sorts an error: an answer of Redis's (WRONGPASS, NOAUTH, NOPERM,
// OOM, a script's ERR...) is of the kind its first word names, so that a
// configuration error is reported as what it is; anything else is
// kindNoAnswer.
func kindOf(err error) string {
	if err == nil {
		return ""
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !errors.Is(err, errTimeout) {
		kind, _, _ := strings.Cut(rerr.Error(), " ")
		return kind
	}
	return kindNoAnswer
}

// isOOM reports whether Redis refused a write because it is full.
func isOOM(err error) bool { return kindOf(err) == "OOM" }

// isNoScript reports whether Redis does not know a script by its digest.
func isNoScript(err error) bool { return kindOf(err) == "NOSCRIPT" }

// bounded runs fn with a context bounded by d and returns when fn does or
// the time is up, whichever is first: fn keeps running in its goroutine
// (one of g's runner) until go-redis gives up on it, but nobody waits for
// it (go-redis ignores context deadlines on reads unless
// ContextTimeoutEnabled is set). With g.direct, the client ends fn at the
// deadline itself, and fn runs in the caller's goroutine. ctx's own error
// is returned as it is.
func bounded[T any](ctx context.Context, d time.Duration, g *guard, fn func(ctx context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if g.direct {
		v, err := fn(cctx)
		if err := ctx.Err(); err != nil {
			var zero T
			return zero, err
		}
		if err != nil && cctx.Err() != nil {
			err = errTimeout
		}
		return v, err
	}
	done := make(chan result, 1)
	g.runner.run(func() {
		v, err := fn(cctx)
		done <- result{v, err}
	})
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
	return r.v, r.err
}

// command runs one Redis command bounded by the guard's timeout. When the
// pool has no idle connection, one is first set up by a PING bounded by
// the set-up bound: dialling, HELLO and AUTH take round trips of their own
// that a command's budget must not pay for.
func command[T any](ctx context.Context, g *guard, rdb redis.UniversalClient, fn func(ctx context.Context) (T, error)) (T, error) {
	if rdb.PoolStats().IdleConns == 0 {
		if _, err := bounded(ctx, g.setup, g, func(ctx context.Context) (string, error) { return rdb.Ping(ctx).Result() }); err != nil {
			var zero T
			return zero, err
		}
	}
	return bounded(ctx, g.timeout, g, fn)
}
