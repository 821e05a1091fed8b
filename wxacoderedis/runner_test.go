package wxacoderedis

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// goroutineID returns the id of the calling goroutine, from the first
// line of its stack ("goroutine N [running]:"), or 0.
func goroutineID() uint64 {
	buf := make([]byte, 64)
	f := bytes.Fields(buf[:runtime.Stack(buf, false)])
	if len(f) < 2 {
		return 0
	}
	id, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return id
}

// TestRunnerReusesItsGoroutine: jobs run one after another run in the
// goroutine that ran the first (its stack already grown), not each in a
// new one.
func TestRunnerReusesItsGoroutine(t *testing.T) {
	r := newRunner(time.Minute)
	ids := make(chan uint64)
	seen := map[uint64]bool{}
	const jobs = 20
	for range jobs {
		r.run(func() { ids <- goroutineID() })
		seen[<-ids] = true
		// the goroutine goes back to wait for a job right after it sent;
		// on a loaded machine it may not be there yet, and the next job
		// gets a goroutine of its own, which the bound below allows
		time.Sleep(10 * time.Millisecond)
	}
	if seen[0] {
		t.Fatal("no goroutine id in the stack")
	}
	if got := len(seen); got > jobs/4 {
		t.Errorf("%d jobs one after another ran in %d goroutines, want 1 (at most %d on a loaded machine)", jobs, got, jobs/4)
	}
}

// TestRunnerHungJobBlocksNoOther: a job that never returns (a command to
// a frozen Redis) holds its goroutine alone; the next job runs at once in
// another.
func TestRunnerHungJobBlocksNoOther(t *testing.T) {
	r := newRunner(time.Minute)
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	r.run(func() { <-hung })
	for i := range 3 {
		done := make(chan struct{})
		r.run(func() { close(done) })
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("job %d after a hung one did not run in 10s", i+1)
		}
	}
}

// TestRunnerGoroutinesEnd: goroutines idle for the runner's idle time end,
// so a runner no longer used leaves nothing running.
func TestRunnerGoroutinesEnd(t *testing.T) {
	before := runtime.NumGoroutine()
	r := newRunner(20 * time.Millisecond)
	release := make(chan struct{})
	const jobs = 5
	started := make(chan struct{}, jobs)
	for range jobs {
		r.run(func() { started <- struct{}{}; <-release })
	}
	for range jobs {
		<-started
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 10s after the jobs ended, want at most %d as before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
