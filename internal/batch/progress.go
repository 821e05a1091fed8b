package batch

import (
	"context"
	"fmt"
	"time"
)

// showProgress reports progress on the Log until the returned function is
// called: on a terminal, one line redrawn in place twice a second; in a
// log, one line every ProgressEvery, so a long run is not silent. Each
// says done/total, rate, failures and ETA.
func (r *run) showProgress(start time.Time) (stop func()) {
	if len(r.plan.jobs) == 0 {
		return func() {}
	}
	// In place on a terminal (padded to wipe a longer line before it), a
	// line each time in a log.
	every, prefix, end := r.cfg.ProgressEvery, "wxacode batch: progress: ", "\n"
	if r.cfg.Terminal {
		every, prefix, end = terminalEvery, "\r", "   "
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for r.cfg.Clock.Sleep(ctx, every) == nil {
			fmt.Fprintf(r.cfg.Log, "%s%s%s", prefix, r.progressLine(start), end)
		}
		if r.cfg.Terminal {
			fmt.Fprintf(r.cfg.Log, "\r%s   \n", r.progressLine(start))
		}
	}()
	return func() {
		cancel()
		<-finished
	}
}

// progressLine is "N/TOTAL done, R/s, E errors, ETA D", or, while the
// workers pause, "N/TOTAL done, E errors, paused for quota (45009):
// resuming in 8s".
func (r *run) progressLine(start time.Time) string {
	failed, settled := r.counts()
	total := len(r.plan.jobs)
	if code, left, ok := r.gate.paused(); ok {
		return fmt.Sprintf("%d/%d done, %d errors, paused for %s: resuming in %s", settled, total, failed, pauseReason(code), left.Round(time.Second))
	}
	elapsed := r.cfg.Clock.Now().Sub(start)
	rate := float64(settled) / max(elapsed.Seconds(), 1e-9)
	eta := "-"
	if rate > 0 {
		eta = time.Duration(float64(total-settled) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d done, %.1f/s, %d errors, ETA %s", settled, total, rate, failed, eta)
}
