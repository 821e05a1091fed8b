package batch

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/go-wxacode/wxacode/internal/atomicfile"
)

// Run runs one batch: prepare the output directory, plan the input, mint,
// and finish (see the package doc). It returns an error only when the
// batch could not start, before any call: the input or the output
// directory is unusable, its manifest cannot be read, another run holds
// it, or ctx ended while the input was read (then ctx's error). Everything
// after that, stops and interruptions included, is in the Summary.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg = cfg.withDefaults()
	prep, err := prepare(ctx, &cfg)
	if err != nil {
		return Summary{}, err
	}
	defer prep.unlock()
	if len(prep.plan.ignored) > 0 {
		fmt.Fprintf(cfg.Log, "wxacode batch: ignoring the input's unknown columns: %s\n", strings.Join(prep.plan.ignored, ", "))
	}
	if cfg.SetMemoryLimit != nil {
		cfg.SetMemoryLimit(memoryLimit(cfg.Concurrency))
	}
	r := newRun(ctx, &cfg, prep)
	start := cfg.Clock.Now()
	stopProgress := r.showProgress(start)
	r.work(r.ctx)
	stopProgress()
	r.finish()
	sum := r.summary()
	sum.Elapsed = cfg.Clock.Now().Sub(start)
	return sum, nil
}

// prepared is a directory ready for a run: locked, swept, its manifest
// read and the input planned.
type prepared struct {
	man    *manifest
	plan   plan
	unlock func()
}

// prepare makes sure the directory takes files, locks it, removes our
// temporary files (holding the lock, none can be a live run's), reads the
// manifest and plans the input. Nothing is sent before it returns.
func prepare(ctx context.Context, cfg *Config) (*prepared, error) {
	if err := atomicfile.CheckDir(cfg.Dir, true); err != nil {
		return nil, err
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	atomicfile.RemoveTemps(cfg.Dir, 0)
	man, err := loadManifest(cfg.Dir)
	if err != nil {
		unlock()
		return nil, err
	}
	// The input is planned as it is read, so that memory follows the plan
	// (a few hundred bytes a row), never the file.
	pl := newPlanner(cfg, cfg.FoldsCase(cfg.Dir), man)
	ignored, err := readRows(ctx, cfg.Input, cfg.InputName, pl.add)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		unlock()
		return nil, err
	}
	p := pl.finish()
	p.ignored = ignored
	return &prepared{man: man, plan: p, unlock: unlock}, nil
}

// memoryLimit gives the planner's garbage back and returns a soft memory
// limit a headroom above what the process then holds. Every image minted
// becomes garbage once written: with the default GC it would pile up to
// twice the plan (a 100,000-row batch then peaked near 70 MB); with the
// limit, the collector takes it back promptly and memory follows the plan
// plus the calls in flight.
func memoryLimit(concurrency int) int64 {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	inUse := int64(ms.Sys - ms.HeapReleased)
	return inUse + 16<<20 + int64(concurrency)*128<<10
}

// newRun is the minting part of a run; its ctx ends with ctx, or when the
// quota runs out.
func newRun(ctx context.Context, cfg *Config, prep *prepared) *run {
	r := &run{cfg: cfg, man: prep.man, plan: &prep.plan, origin: shortOf(cfg.Origin), halted: make(chan struct{})}
	r.ctx, r.stop = context.WithCancel(ctx)
	r.gate = quotaGate{clock: cfg.Clock, first: cfg.QuotaPause, giveUp: cfg.QuotaGiveUp}
	r.fails = prep.plan.fails
	r.failed = len(prep.plan.fails)
	return r
}

// finish closes the manifest and writes failures.csv (unless the
// directory failed: it takes no more files).
func (r *run) finish() {
	r.stop()
	if err := r.man.close(); err != nil {
		r.halt(dirError(r.cfg.Dir, err))
	}
	if r.haltErr == nil || !r.haltIsDir {
		if err := writeFailures(r.cfg.Dir, r.fails); err != nil {
			r.halt(dirError(r.cfg.Dir, err))
		}
	}
}

// summary counts what the run did.
func (r *run) summary() Summary {
	p := r.plan
	s := Summary{Rows: p.rows, Minted: r.minted, Copied: r.copied, Present: p.present, Unrecorded: p.unrecorded,
		Duplicates: p.duplicates, Failed: r.failed, Left: len(p.jobs) - r.settled, Stopped: r.haltErr, DirFailed: r.haltIsDir}
	if r.gate.isExhausted() {
		s.Exhausted = r.gate.lastCode()
	}
	seen := map[string]bool{}
	for _, f := range r.fails {
		if f.hint != "" && !seen[f.errcode] {
			seen[f.errcode] = true
			s.Hints = append(s.Hints, Hint{Code: f.errcode, Text: f.hint})
		}
	}
	return s
}
