package main

import (
	"fmt"
	"time"
)

// progressEvery is how often the live progress line is redrawn on a
// terminal.
const progressEvery = 500 * time.Millisecond

// showProgress reports progress on stderr until the returned function is
// called: on a terminal, one line redrawn in place twice a second; in a log
// (stderr not a terminal), one line every 30 s, so a long run is not
// silent. Each says done/total, rate, failures and ETA.
func (r *batchRun) showProgress(start time.Time) (stop func()) {
	if r.total == 0 {
		return func() {}
	}
	// In place on a terminal (padded to wipe a longer line before it), a
	// line each time in a log.
	every, prefix, end := orDefault(r.app.progressEvery, logProgressEvery), "wxacode batch: progress: ", "\n"
	if r.app.terminal {
		every, prefix, end = progressEvery, "\r", "   "
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if r.app.terminal {
					fmt.Fprintf(r.app.stderr, "\r%s   \n", r.progressLine(start))
				}
				return
			case <-t.C:
				fmt.Fprintf(r.app.stderr, "%s%s%s", prefix, r.progressLine(start), end)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// progressLine is "N/TOTAL done, R/s, E errors, ETA D", or, while the
// workers pause for quota, "N/TOTAL done, E errors, paused for quota
// (45009): resuming in 8s".
func (r *batchRun) progressLine(start time.Time) string {
	failed, settled := r.counts()
	if code, left, ok := r.gate.paused(); ok {
		return fmt.Sprintf("%d/%d done, %d errors, paused for %s: resuming in %s", settled, r.total, failed, pauseReason(code), left.Round(time.Second))
	}
	elapsed := time.Since(start)
	rate := float64(settled) / max(elapsed.Seconds(), 1e-9)
	eta := "-"
	if rate > 0 {
		eta = time.Duration(float64(r.total-settled) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d done, %.1f/s, %d errors, ETA %s", settled, r.total, rate, failed, eta)
}
