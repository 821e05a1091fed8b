package wxacoderedis

import (
	"context"
	"testing"
	"time"
)

// BenchmarkLimiterWait: how many turns one process can be granted per
// second by the local Redis when the limit is far away.
func BenchmarkLimiterWait(b *testing.B) {
	srv := startRedisB(b)
	rdb, _ := newRDB(b, srv.addr)
	l := NewLimiter(rdb, "bench", 1<<30, time.Second)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLimiterWaitParallel: the same from many goroutines.
func BenchmarkLimiterWaitParallel(b *testing.B) {
	srv := startRedisB(b)
	rdb, _ := newRDB(b, srv.addr)
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
