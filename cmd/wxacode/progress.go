package main

import (
	"fmt"
	"time"
)

// progressEvery is how often the live progress line is redrawn.
const progressEvery = 500 * time.Millisecond

// showProgress redraws a progress line on stderr while stderr is a
// terminal (done/total, rate, errors, ETA), and returns a function that
// stops it and ends the line. Elsewhere (logs, CI) only the final summary
// is printed.
func (r *batchRun) showProgress(start time.Time) (stop func()) {
	if !r.app.terminal || r.total == 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(r.app.stderr, "\r%s\n", r.progressLine(start))
				return
			case <-t.C:
				fmt.Fprintf(r.app.stderr, "\r%s", r.progressLine(start))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// progressLine is "N/TOTAL done, R/s, E errors, ETA D".
func (r *batchRun) progressLine(start time.Time) string {
	failed, settled := r.counts()
	elapsed := time.Since(start)
	rate := float64(settled) / max(elapsed.Seconds(), 1e-9)
	eta := "-"
	if rate > 0 {
		eta = time.Duration(float64(r.total-settled) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d done, %.1f/s, %d errors, ETA %s   ", settled, r.total, rate, failed, eta)
}
