package wxacoderedis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// jsonLogger returns a logger writing JSON lines to a buffer safe for
// concurrent use.
func jsonLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// wantOneWarning checks that an outage was logged once at Warn, not per
// call.
func wantOneWarning(t *testing.T, logs *syncBuffer) {
	t.Helper()
	if got := strings.Count(logs.String(), `"level":"WARN"`); got != 1 {
		t.Errorf("%d warnings, want 1:\n%s", got, logs)
	}
}

// timedWait runs l.Wait and returns how long it took.
func timedWait(t *testing.T, l *Limiter) time.Duration {
	t.Helper()
	start := time.Now()
	if err := l.Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return time.Since(start)
}

// TestLimiterSharesOneBucket: two Limiters of one name (as two processes
// would have) draw from one bucket in Redis; another name has its own.
func TestLimiterSharesOneBucket(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	// 60 an hour: a burst of 1, then one a minute.
	a, b := NewLimiter(rdb, "wxapp", 60, time.Hour), NewLimiter(rdb, "wxapp", 60, time.Hour)
	if d := timedWait(t, a); d > time.Second {
		t.Errorf("the burst took %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the second limiter of one name: Wait = %v, want to wait past its deadline", err)
	}
	if d := timedWait(t, NewLimiter(rdb, "other", 60, time.Hour)); d > time.Second {
		t.Errorf("another name waited %v: it shares the bucket", d)
	}
	keys, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"wxacode:other:quota", "wxacode:wxapp:quota"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v: everything under wxacode:NAME:", keys, want)
	}
}

// TestLimiterRedisRefused: with nothing listening, Wait goes on at once on
// the local limit of the same rate, asks Redis at most about once a
// second, and logs one warning.
func TestLimiterRedisRefused(t *testing.T) {
	rdb, calls := newRDB(t, "127.0.0.1:"+freePort(t))
	logger, logs := jsonLogger()
	l := NewLimiter(rdb, "wxapp", 10, time.Second, WithLogger(logger)) // burst 1, then one each 100 ms
	start := time.Now()
	granted := 0
	for time.Since(start) < 1500*time.Millisecond {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		granted++
	}
	elapsed := time.Since(start)
	// The local limit: at most 1 + 10 a second, and not much less.
	if max := 1 + int(elapsed.Seconds()*10) + 1; granted > max || granted < 8 {
		t.Errorf("%d turns in %v, want the local 10 a second (at most %d)", granted, elapsed, max)
	}
	if got := calls.n.Load(); got > 3 {
		t.Errorf("Redis asked %d times in %v, want about once a second", got, elapsed)
	}
	wantOneWarning(t, logs)
}

// TestLimiterRedisHung: a server that accepts connections and never
// answers (SIGSTOP) holds a Wait about 250 ms, not go-redis's 3 s read
// timeout, whether the client bounds commands by their context
// (ContextTimeoutEnabled: the command runs in the caller's goroutine) or
// not (it runs in a goroutine of its own); Redis is then left alone for a
// second; when it answers again, the shared bucket is used again.
func TestLimiterRedisHung(t *testing.T) {
	for _, honours := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", honours), func(t *testing.T) {
			srv := startRedis(t)
			rdb, calls := newRDBWith(t, &redis.Options{Addr: srv.addr, ContextTimeoutEnabled: honours})
			logger, logs := jsonLogger()
			l := NewLimiter(rdb, "wxapp", 1000, time.Second, WithLogger(logger))
			if got := l.guard.direct; got != honours {
				t.Fatalf("guard.direct = %v, want %v", got, honours)
			}
			timedWait(t, l) // the connection is open and the script loaded
			srv.stop(t)
			if d := timedWait(t, l); d > 1500*time.Millisecond {
				t.Errorf("Wait on a hung Redis took %v, want about 250 ms", d)
			}
			before := calls.n.Load()
			for range 50 {
				if d := timedWait(t, l); d > 500*time.Millisecond {
					t.Errorf("a Wait in the pause took %v", d)
				}
			}
			if got := calls.n.Load() - before; got != 0 {
				t.Errorf("Redis asked %d times in the pause after a failure, want 0", got)
			}
			srv.cont(t)
			time.Sleep(1100 * time.Millisecond) // the pause ends
			timedWait(t, l)
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), "answers again") {
				if time.Now().After(deadline) {
					t.Fatalf("the limiter did not go back to Redis:\n%s", logs)
				}
				timedWait(t, l)
				time.Sleep(50 * time.Millisecond)
			}
			if n, err := rdb.Exists(context.Background(), "wxacode:wxapp:quota").Result(); err != nil || n != 1 {
				t.Errorf("the shared bucket is not in Redis after recovery: %d, %v", n, err)
			}
			wantOneWarning(t, logs)
		})
	}
}

// TestLimiterCancel: a caller that gives up while waiting for its turn
// gets its context's error.
func TestLimiterCancel(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	l := NewLimiter(rdb, "wxapp", 1, time.Hour)
	timedWait(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
	if err := NewLimiter(rdb, "free", 0, time.Second).Wait(context.Background()); err != nil {
		t.Errorf("an unlimited Limiter: %v", err)
	}
}

// waitAfter runs l.Wait in a goroutine with a context it returns the
// cancel of, and a channel that gets Wait's error.
func waitAfter(l *Limiter) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx) }()
	return cancel, done
}

// TestLimiterGivesBackATurn: a caller that leaves while it sleeps gives
// its turn back when no turn was taken after it: the next caller, in
// another process, gets that turn, not the one after.
func TestLimiterGivesBackATurn(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	a, b := NewLimiter(rdb, "wxapp", 1, 2*time.Second), NewLimiter(rdb, "wxapp", 1, 2*time.Second)
	timedWait(t, a) // the burst; the next turn comes in 2 s
	cancel, done := waitAfter(a)
	time.Sleep(300 * time.Millisecond) // it holds the next turn and sleeps
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	time.Sleep(200 * time.Millisecond) // the turn goes back (best effort, in the background)
	if d := timedWait(t, b); d > 3*time.Second {
		t.Errorf("the next caller waited %v: the turn given up was not given back (its own is 2 s later)", d)
	}
}

// TestLimiterReusesALeftTurn: when a later turn was taken, a turn whose
// caller left cannot go back to Redis; the next caller of the same process
// takes it, without a round trip.
func TestLimiterReusesALeftTurn(t *testing.T) {
	srv := startRedis(t)
	rdb, calls := newRDB(t, srv.addr)
	a, b := NewLimiter(rdb, "wxapp", 1, time.Second), NewLimiter(rdb, "wxapp", 1, time.Second)
	timedWait(t, a)
	cancelA, doneA := waitAfter(a) // the turn at +1 s
	time.Sleep(200 * time.Millisecond)
	cancelB, doneB := waitAfter(b) // the turn at +2 s
	t.Cleanup(cancelB)
	time.Sleep(200 * time.Millisecond)
	cancelA()
	if err := <-doneA; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	time.Sleep(200 * time.Millisecond)
	before := calls.n.Load()
	if d := timedWait(t, a); d > 900*time.Millisecond {
		t.Errorf("the next caller waited %v, want the turn its process had left (at most about 600 ms away)", d)
	}
	if got := calls.n.Load() - before; got != 0 {
		t.Errorf("%d Redis commands for a spare turn, want 0", got)
	}
	if err := <-doneB; err != nil {
		t.Errorf("the other process's turn: %v", err)
	}
}

// TestLimiterScriptFlushed: after SCRIPT FLUSH (or a restarted Redis) the
// Limiter loads its script again and goes on using Redis, without taking
// it for a failing one.
func TestLimiterScriptFlushed(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	logger, logs := jsonLogger()
	l := NewLimiter(rdb, "wxapp", 1000, time.Second, WithLogger(logger))
	timedWait(t, l)
	if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	timedWait(t, l)
	if logs.String() != "" {
		t.Errorf("logged after a script flush:\n%s", logs)
	}
	if n, err := rdb.Exists(context.Background(), "wxacode:wxapp:quota").Result(); err != nil || n != 1 {
		t.Errorf("the quota key: %d, %v", n, err)
	}
}

// TestFallbackPolicies: WithFallback(n, period) paces a process that
// cannot reach Redis to n per period; WithFallback(0, ...) waits for Redis
// (until the caller's context ends), and goes on when Redis answers.
func TestFallbackPolicies(t *testing.T) {
	t.Run("fixed", func(t *testing.T) {
		rdb, _ := newRDB(t, "127.0.0.1:"+freePort(t))
		l := NewLimiter(rdb, "wxapp", 1000, time.Second, WithFallback(5, time.Second))
		start := time.Now()
		granted := 0
		for time.Since(start) < 1500*time.Millisecond {
			if err := l.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			granted++
		}
		if elapsed := time.Since(start); granted > 1+int(elapsed.Seconds()*5)+1 || granted < 4 {
			t.Errorf("%d turns in %v with WithFallback(5, time.Second), want about 5 a second", granted, elapsed)
		}
	})
	t.Run("closed", func(t *testing.T) {
		srv := startRedis(t)
		rdb, _ := newRDB(t, srv.addr)
		l := NewLimiter(rdb, "wxapp", 1000, time.Second, WithFallback(0, time.Second))
		timedWait(t, l)
		srv.stop(t)
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait with Redis frozen, failing closed: %v, want the deadline", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a second Wait while Redis is out: %v, want the deadline", err)
		}
		srv.cont(t)
		if d := timedWait(t, l); d > 5*time.Second {
			t.Errorf("Wait took %v after Redis came back, want about a pause (1 s)", d)
		}
	})
}

// TestLimiterNoticesALostQuota: Redis loses the quota's key (a restart
// without persistence, a failover, a flush) and another replica makes it
// anew before this one asks again, after this one's turns are over: this
// Limiter still sees that the state was lost (the key's "born" changed),
// takes no turn from that answer, and keeps to its share of the fleet it
// knew (not to n because the new key counts one Limiter) for the grace.
func TestLimiterNoticesALostQuota(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	ctx := context.Background()
	a, b := NewLimiter(rdb, "wxapp", 100, time.Second), NewLimiter(rdb, "wxapp", 100, time.Second)
	timedWait(t, a)
	timedWait(t, b)
	time.Sleep(fleetReport + 50*time.Millisecond) // a reports itself again, and hears of b
	timedWait(t, a)
	if got := a.fleetSize(); got != 2 {
		t.Fatalf("a's fleet: %d, want 2", got)
	}
	time.Sleep(100 * time.Millisecond) // the turns a knew of are over
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	timedWait(t, b) // b makes the key anew
	if a.epoch() != nil {
		t.Fatal("a is pacing itself alone before it asked")
	}
	timedWait(t, a)
	ep := a.epoch()
	if ep == nil {
		t.Fatal("a did not notice that Redis lost the quota: it paces itself by Redis alone")
	}
	if got := a.fleetSize(); got != 2 {
		t.Errorf("a's fleet after the loss: %d, want the 2 it knew", got)
	}
	if got, want := ep.perPeriod, int64(100/2+1); got != want {
		t.Errorf("a's share: %d a period, want %d (n/2 + 1)", got, want)
	}
}

// TestLimiterAsksOnceASecondWhenNoTurnFits: while the fleet's turns reach
// past every deadline its callers have, a Limiter asks Redis nothing for
// them (they wait out their deadline), but once a second it asks anyway,
// so that it keeps hearing of the fleet.
func TestLimiterAsksOnceASecondWhenNoTurnFits(t *testing.T) {
	srv := startRedis(t)
	rdb, calls := newRDB(t, srv.addr)
	hogRDB, _ := newRDB(t, srv.addr) // a process of its own: its commands are not counted
	hog, l := NewLimiter(hogRDB, "wxapp", 10, time.Second), NewLimiter(rdb, "wxapp", 10, time.Second)
	// The hog's callers, with no deadline, hold the turns of the next 3 s.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for range 30 {
		go func() { _ = hog.Wait(ctx) }()
	}
	time.Sleep(300 * time.Millisecond)
	short := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return l.Wait(ctx)
	}
	if err := short(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want its deadline: no turn fits", err)
	}
	before := calls.n.Load()
	start := time.Now()
	for range 3 {
		if err := short(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want its deadline", err)
		}
	}
	if got := calls.n.Load() - before; got != 0 && time.Since(start) < 900*time.Millisecond {
		t.Errorf("%d Redis commands for callers no turn could fit, within a second, want 0", got)
	}
	time.Sleep(time.Second)
	before = calls.n.Load()
	if err := short(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want its deadline", err)
	}
	if got := calls.n.Load() - before; got != 1 {
		t.Errorf("%d Redis commands a second after the last answer, want 1: the Limiter must keep hearing of the fleet", got)
	}
}

// fleetSize returns the number of Limiters Redis last said share l's
// quota (0 before the first answer that said).
func (l *Limiter) fleetSize() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fleet
}

// TestLimiterTakesOverAnOlderKey: the previous release kept the quota
// under the same key as a string (redis_rate's tat); a Limiter of this one
// meeting it (a rolling upgrade) replaces it with its hash and goes on,
// without taking Redis for a failing one.
func TestLimiterTakesOverAnOlderKey(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	ctx := context.Background()
	if err := rdb.Set(ctx, "wxacode:wxapp:quota", "311235200.123456", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	logger, logs := jsonLogger()
	l := NewLimiter(rdb, "wxapp", 1000, time.Second, WithLogger(logger))
	for range 3 {
		if d := timedWait(t, l); d > time.Second {
			t.Errorf("Wait took %v", d)
		}
	}
	if typ, err := rdb.Type(ctx, "wxacode:wxapp:quota").Result(); err != nil || typ != "hash" {
		t.Errorf("the quota key is a %q (%v), want a hash", typ, err)
	}
	if l.epoch() != nil || logs.String() != "" {
		t.Errorf("the older key was taken for a failing Redis:\n%s", logs)
	}
}

// TestLimiterLearnsTheFleetFromEveryAnswer: a Limiter reports itself at
// most once a second, but every answer tells it how many share the quota,
// so that a process whose callers seldom ask (all of them waiting out
// deadlines no turn fits) still knows its share when Redis goes out.
func TestLimiterLearnsTheFleetFromEveryAnswer(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	a, b := NewLimiter(rdb, "wxapp", 1000, time.Second), NewLimiter(rdb, "wxapp", 1000, time.Second)
	timedWait(t, a)
	if got := a.fleetSize(); got != 1 {
		t.Fatalf("a's fleet after its first answer: %d, want 1", got)
	}
	timedWait(t, b)
	timedWait(t, a) // within a second: a does not report itself again
	if got := a.fleetSize(); got != 2 {
		t.Errorf("a's fleet after b reported: %d, want 2", got)
	}
}
