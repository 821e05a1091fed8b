package wxacoderedis

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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
// timeout; Redis is then left alone for a second; when it answers again,
// the shared bucket is used again.
func TestLimiterRedisHung(t *testing.T) {
	srv := startRedis(t)
	rdb, calls := newRDB(t, srv.addr)
	logger, logs := jsonLogger()
	l := NewLimiter(rdb, "wxapp", 1000, time.Second, WithLogger(logger))
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
