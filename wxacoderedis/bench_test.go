package wxacoderedis

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The benchmarks use a client without the tests' counting hook (a mutex
// and a map a command): they measure the Limiter, as users run it.

// BenchmarkLimiterWait: how many turns one process can be granted per
// second by the local Redis when the limit is far away.
func BenchmarkLimiterWait(b *testing.B) {
	srv := startRedisB(b)
	rdb := plainRDB(b, &redis.Options{Addr: srv.addr})
	benchmarkWait(b, rdb)
}

// BenchmarkLimiterWaitParallel: the same from many goroutines.
func BenchmarkLimiterWaitParallel(b *testing.B) {
	srv := startRedisB(b)
	rdb := plainRDB(b, &redis.Options{Addr: srv.addr})
	l := NewLimiter(rdb, "bench", 1<<30, time.Second)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Wait(context.Background()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLimiterWaitDeadlines: BenchmarkLimiterWait with a client that
// honours context deadlines (ContextTimeoutEnabled): the Limiter then runs
// its commands in the caller's goroutine, with no goroutine to bound them.
func BenchmarkLimiterWaitDeadlines(b *testing.B) {
	srv := startRedisB(b)
	rdb := plainRDB(b, &redis.Options{Addr: srv.addr, ContextTimeoutEnabled: true})
	benchmarkWait(b, rdb)
}

// benchmarkWait measures one goroutine's Waits on a Limiter of rdb whose
// limit is far away.
func benchmarkWait(b *testing.B, rdb *redis.Client) {
	l := NewLimiter(rdb, "bench", 1<<30, time.Second)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// plainRDB returns a go-redis client of opt with no hook, closed when b
// ends.
func plainRDB(b *testing.B, opt *redis.Options) *redis.Client {
	b.Helper()
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
