package batch

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The quota gate and the progress line run on Config.Clock; in a synctest
// bubble the real clock is the bubble's fake one, so these tests take no
// time and no timing can make them flaky.

// TestQuotaGateBacksOff: pauses double from the first up to a minute,
// workers that hit the quota together share one pause, a success starts
// over, and quota errors for giveUp without a success exhaust the gate.
func TestQuotaGateBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &quotaGate{clock: RealClock{}, first: time.Second, giveUp: 5 * time.Minute}
		ctx := context.Background()
		var got []time.Duration
		for range 9 {
			d, started, exhausted := g.trip(45009)
			if !started || exhausted {
				t.Fatalf("trip: started %v exhausted %v", started, exhausted)
			}
			if _, shared, _ := g.trip(45009); shared {
				t.Fatal("a second worker started a pause of its own")
			}
			got = append(got, d)
			start := time.Now()
			if !g.wait(ctx) {
				t.Fatal("wait ended early")
			}
			if waited := time.Since(start); waited != d {
				t.Fatalf("waited %v, want %v", waited, d)
			}
		}
		want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
		for i := range want {
			if got[i] != want[i]*time.Second {
				t.Fatalf("pauses %v, want %v seconds", got, want)
			}
		}
		// 243 s so far; the next trips pass five minutes without a success.
		var exhausted bool
		for !exhausted {
			_, _, exhausted = g.trip(45009)
			g.wait(ctx)
		}
		if !g.isExhausted() || g.lastCode() != 45009 {
			t.Error("the gate is not exhausted")
		}
		g2 := &quotaGate{clock: RealClock{}, first: time.Second, giveUp: time.Hour}
		g2.trip(45011)
		g2.wait(ctx)
		g2.trip(45011)
		g2.wait(ctx)
		g2.success()
		if d, _, _ := g2.trip(45011); d != time.Second {
			t.Errorf("after a success the pause is %v, want the first again", d)
		}
	})
}

// TestQuotaGateWaitEndsWithCtx: a worker waiting out a pause leaves when
// its ctx ends, at once.
func TestQuotaGateWaitEndsWithCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &quotaGate{clock: RealClock{}, first: time.Minute, giveUp: time.Hour}
		g.trip(45009)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(3*time.Second, cancel)
		start := time.Now()
		if g.wait(ctx) {
			t.Error("wait went on after ctx ended")
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Errorf("waited %v, want 3s", waited)
		}
		if code, left, ok := g.paused(); !ok || code != 45009 || left != 57*time.Second {
			t.Errorf("paused() = %d, %v, %v; want 45009, 57s", code, left, ok)
		}
	})
}

// TestProgressLines: in a log, a line every ProgressEvery, saying how far
// the run is and, while paused, why; on a terminal, the line redrawn
// twice a second and ended when the run stops.
func TestProgressLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log syncBuffer
		cfg := Config{Log: &log, ProgressEvery: 30 * time.Second}.withDefaults()
		r := &run{cfg: &cfg, plan: &plan{jobs: make([]job, 10)}}
		r.gate = quotaGate{clock: cfg.Clock, first: 8 * time.Second, giveUp: time.Hour}
		start := time.Now()
		stop := r.showProgress(start)
		time.Sleep(30*time.Second + time.Millisecond)
		r.settle(0, 1, true, nil)
		r.settle(1, 1, true, nil)
		time.Sleep(30 * time.Second)
		time.Sleep(25 * time.Second)
		r.gate.trip(45009) // paused until 93 s
		time.Sleep(5 * time.Second)
		stop()
		lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
		want := []string{
			"wxacode batch: progress: 0/10 done, 0.0/s, 0 errors, ETA -",
			"wxacode batch: progress: 2/10 done, 0.0/s, 0 errors, ETA 4m0s",
			"wxacode batch: progress: 2/10 done, 0 errors, paused for quota (45009): resuming in 3s",
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("log:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
}
