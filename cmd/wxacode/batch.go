package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/wait"
)

const batchHelp = `Usage: wxacode batch -in FILE -out DIR [flags]

Mints a code for every scene in FILE ("-" for standard input) into DIR,
within the API's rate limit.

Input: the first line (after a byte order mark) is a CSV header exactly
when one of its fields, trimmed, unquoted and in any case, is "scene"; its
delimiter ("," ";" or tab) is the file's. Columns come in any order: scene,
and optionally page and filename; other columns are ignored with a warning,
so DIR/failures.csv can be fed back as input to retry its scenes. An empty
page means -page, an empty filename one derived from the scene. Any other
first line means one scene per line.

Output: DIR/NAME.jpg (or .png with -transparent: the extension follows the
image received). NAME is the scene with every byte other than A-Z a-z 0-9
- _ . written as %XX, and a leading "." too: "id=42" -> id%3D42.jpg, so no
scene can reach outside DIR. Files are written under a temporary name,
synced and renamed, so DIR never holds half an image. On a directory whose
file names ignore case, two names that differ only in case are a failure,
never an overwrite.

Resuming: a scene whose complete image (JPEG or PNG with its end marker) is
already in DIR is skipped, so after a crash or Ctrl-C the same command
finishes the rest; anything else under its name is minted again. -force
mints every scene again. The same scene and page twice is minted once. One
run at a time holds DIR (a lock left by a killed run does not count).

Failures go to DIR/failures.csv (scene,errcode,errmsg; errcode is empty for
errors found locally or in transport), and the exit code is then 1. Scenes
that break the API's rules fail without a call.

Quota (45009/45011): all workers pause, 1 s at first and twice as long each
time up to 1 min, and the scene is tried again: no scene fails for quota.
After 5 minutes of quota errors without a success, the run stops with
"quota exhausted: N scenes left", exit code 1; those scenes are not
failures (the next run mints them).

-timeout bounds each HTTP exchange with the API; time queued for the rate
limit, or between retries, does not count. When standard error is not a
terminal, a progress line is printed every 30 s.

Examples:
  wxacode batch -fake -in scenes.txt -out codes/
  wxacode batch -in scenes.csv -out codes/ -page pages/item/index -concurrency 16 -rate 4500/min

Flags:
`

// Batch defaults and bounds.
const (
	defaultConcurrency = 8
	maxConcurrency     = 256
	defaultRate        = "4500/min" // below the API's 5000 a minute
	firstQuotaPause    = time.Second
	maxQuotaPause      = time.Minute
	quotaGiveUp        = 5 * time.Minute // of quota errors without a success
	logProgressEvery   = 30 * time.Second
)

// job is a scene that needs minting.
type job struct {
	row
	req  wxacode.Request
	base string // file name without extension
}

// batchPlan is what reading the input decided.
type batchPlan struct {
	jobs       []job
	fails      []failure // found locally
	present    int       // images already in the directory
	duplicates int       // rows repeating an earlier scene and page
}

// batch runs "wxacode batch".
func (a *app) batch(ctx context.Context, args []string) int {
	const cmd = "wxacode batch"
	fs := newFlagSet("batch")
	var f codeFlags
	f.register(fs)
	in := fs.String("in", "", `input file, "-" for standard input: one scene per line, or CSV with a header naming a scene column (required)`)
	out := fs.String("out", "", "output directory, created if missing (required)")
	concurrency := fs.Int("concurrency", defaultConcurrency, "requests in flight at once")
	rateFlag := fs.String("rate", defaultRate, "at most this many calls, as N/min, N/s or N/h")
	force := fs.Bool("force", false, "mint every scene again, even those whose image is in the output directory")
	if code, stop := a.parse(fs, args, batchHelp); stop {
		return code
	}
	rate, per, err := parseRate(*rateFlag)
	switch {
	case *in == "":
		err = errors.New("-in is required")
	case *out == "":
		err = errors.New("-out is required")
	case *concurrency < 1 || *concurrency > maxConcurrency:
		err = fmt.Errorf("-concurrency must be from 1 to %d", maxConcurrency)
	case err == nil:
		err = f.check()
	}
	if err != nil {
		return a.usageError(cmd, err)
	}
	// Credentials before anything touches the disk.
	client, cleanup, err := a.client(&f, wxacode.WithRateLimit(rate, per))
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer cleanup()
	input, err := readRows(*in, a.stdin)
	if err != nil {
		return a.usageError(cmd, err)
	}
	if len(input.ignored) > 0 {
		fmt.Fprintf(a.stderr, "%s: ignoring the input's unknown columns: %s\n", cmd, strings.Join(input.ignored, ", "))
	}
	if err := checkWritable(*out, true); err != nil {
		return a.usageError(cmd, err)
	}
	unlock, err := lockDir(*out)
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer unlock()
	removeStaleTemps(*out)
	probe := caseInsensitive
	if a.caseInsensitive != nil {
		probe = a.caseInsensitive
	}
	plan := planBatch(input.rows, &f, *out, *force, probe(*out))

	start := time.Now()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	r := &batchRun{app: a, client: client, dir: *out, total: len(plan.jobs), stop: stopRun}
	r.gate = quotaGate{first: orDefault(a.quotaBackoff, firstQuotaPause), giveUp: orDefault(a.quotaGiveUp, quotaGiveUp)}
	r.failed = len(plan.fails)
	r.fails = plan.fails
	stopProgress := r.showProgress(start)
	r.run(runCtx, plan.jobs, *concurrency)
	stopProgress()

	if err := writeFailures(*out, r.fails); err != nil {
		fmt.Fprintf(a.stderr, "%s: %v\n", cmd, err)
		return exitFailed
	}
	elapsed := time.Since(start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d scenes: %d minted, %d already present", cmd, len(input.rows), r.minted, plan.present)
	if plan.duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicates", plan.duplicates)
	}
	fmt.Fprintf(&b, ", %d failed", r.failed)
	if r.failed > 0 {
		fmt.Fprintf(&b, " (see %s)", filepath.Join(*out, failuresFile))
	}
	fmt.Fprintf(&b, ", in %s (%.1f/s)", elapsed.Round(time.Millisecond), float64(r.minted)/max(elapsed.Seconds(), 1e-9))
	left := len(plan.jobs) - r.settled
	defer a.printHints(r.fails)
	switch {
	case r.gate.isExhausted():
		fmt.Fprintln(a.stderr, b.String())
		fmt.Fprintf(a.stderr, "%s: quota exhausted: %d scenes left; run the same command later\n", cmd, left)
		return exitFailed
	case ctx.Err() != nil && left > 0:
		fmt.Fprintf(&b, "; interrupted with %d left: run the same command again to finish", left)
		fmt.Fprintln(a.stderr, b.String())
		return exitInterrupted
	}
	fmt.Fprintln(a.stderr, b.String())
	if r.failed > 0 {
		return exitFailed
	}
	return exitOK
}

// orDefault returns v, or def when v is zero.
func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// planBatch turns rows into jobs: duplicates dropped, invalid scenes and
// unsafe or clashing file names failed locally, present images skipped
// (unless force). On a case-insensitive directory, names that differ only
// in case clash. A row rejected for its file name does not make a later
// row of the same scene a duplicate (an invalid scene or page does: the
// same request breaks the same rule).
func planBatch(rows []row, f *codeFlags, dir string, force, foldCase bool) batchPlan {
	var p batchPlan
	seen := make(map[[2]string]bool)
	names := make(map[string]int) // file base (folded on such a directory) -> line that took it
	for _, rw := range rows {
		fail := func(msg string) { p.fails = append(p.fails, failure{line: rw.line, scene: rw.scene, errmsg: msg}) }
		req := f.request(rw.scene, rw.page)
		key := [2]string{req.Scene, req.Page}
		if seen[key] {
			p.duplicates++
			continue
		}
		if err := req.Validate(); err != nil {
			// The same scene and page would break the same rule: later
			// rows of it are duplicates of this one.
			seen[key] = true
			fail(strings.TrimPrefix(err.Error(), "wxacode: "))
			continue
		}
		base := fileBase(rw.scene)
		if rw.filename != "" {
			var err error
			if base, err = checkFilename(rw.filename); err != nil {
				fail(err.Error())
				continue
			}
		}
		nameKey := base
		if foldCase {
			nameKey = strings.ToLower(base)
		}
		if line, taken := names[nameKey]; taken {
			msg := fmt.Sprintf("file name %s is also the name for line %d", base, line)
			if foldCase {
				msg += " (the output directory ignores case)"
			}
			fail(msg)
			continue
		}
		seen[key] = true
		names[nameKey] = rw.line
		if !force && presentImage(dir, base) != "" {
			p.present++
			continue
		}
		p.jobs = append(p.jobs, job{row: rw, req: req, base: base})
	}
	return p
}

// batchRun is the minting part of a batch.
type batchRun struct {
	app    *app
	client *wxacode.Client
	dir    string
	total  int
	gate   quotaGate
	stop   func() // ends the run (quota exhausted)

	mu      sync.Mutex // guards the counts and fails
	minted  int
	failed  int
	fails   []failure
	settled int
}

// run feeds the jobs to concurrency workers until done or ctx ends.
func (r *batchRun) run(ctx context.Context, jobs []job, concurrency int) {
	ch := make(chan job)
	var wg sync.WaitGroup
	for range min(concurrency, max(len(jobs), 1)) {
		wg.Go(func() {
			for j := range ch {
				r.mint(ctx, j)
			}
		})
	}
feed:
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
}

// mint makes one code and saves it, pausing and trying again on quota
// errors. An interrupted scene, or one left when the quota ran out, is
// neither minted nor failed: a rerun does it.
func (r *batchRun) mint(ctx context.Context, j job) {
	for {
		if !r.gate.wait(ctx) {
			return
		}
		img, err := r.client.GetUnlimited(ctx, j.req)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			r.gate.success()
			if err := writeAtomic(r.dir, j.base+wxacode.ImageExt(img), img); err != nil {
				r.settle(&failure{line: j.line, scene: j.scene, errmsg: err.Error()})
				return
			}
			r.settle(nil)
			return
		}
		var apiErr *wxacode.APIError
		isAPI := errors.As(err, &apiErr)
		if isAPI && (apiErr.Code == wxacode.CodeDailyQuotaExceeded || apiErr.Code == wxacode.CodeMinuteQuotaExceeded) {
			if r.gate.trip() {
				r.stop()
			}
			continue
		}
		fl := failure{line: j.line, scene: j.scene, errmsg: strings.TrimPrefix(err.Error(), "wxacode: ")}
		if isAPI {
			fl.errcode, fl.errmsg, fl.hint = strconv.Itoa(apiErr.Code), apiErr.Message, hint(apiErr)
		}
		r.settle(&fl)
		return
	}
}

// settle records the outcome of one scene.
func (r *batchRun) settle(f *failure) {
	r.mu.Lock()
	if f == nil {
		r.minted++
	} else {
		r.failed++
		r.fails = append(r.fails, *f)
	}
	r.settled++
	n := r.settled
	r.mu.Unlock()
	if r.app.afterEach != nil {
		r.app.afterEach(n)
	}
}

// counts returns how many scenes failed and how many were settled so far.
func (r *batchRun) counts() (failed, settled int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed, r.settled
}

// quotaGate pauses every worker after a quota error: the first pause is
// first, each further one (after the previous ended) twice as long, up to
// maxQuotaPause; a success resets it. Quota errors for giveUp with no
// success in between exhaust it.
type quotaGate struct {
	first, giveUp time.Duration

	mu        sync.Mutex
	until     time.Time // workers wait until here
	pause     time.Duration
	since     time.Time // first quota error since the last success
	exhausted bool
}

// wait returns once any pause is over, or false if ctx ended.
func (g *quotaGate) wait(ctx context.Context) bool {
	g.mu.Lock()
	d := time.Until(g.until)
	g.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	return wait.For(ctx, d) == nil
}

// trip records a quota error and starts a pause, unless one is running.
// It reports whether the quota is now taken to be exhausted.
func (g *quotaGate) trip() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if g.since.IsZero() {
		g.since = now
	}
	if now.Sub(g.since) >= g.giveUp {
		g.exhausted = true
	}
	if now.Before(g.until) {
		return g.exhausted // the workers that hit the quota together share one pause
	}
	if g.pause == 0 {
		g.pause = g.first
	} else {
		g.pause = min(2*g.pause, maxQuotaPause)
	}
	g.until = now.Add(g.pause)
	return g.exhausted
}

// success forgets earlier quota errors.
func (g *quotaGate) success() {
	g.mu.Lock()
	g.pause, g.since = 0, time.Time{}
	g.mu.Unlock()
}

func (g *quotaGate) isExhausted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.exhausted
}

// printHints prints, once per errcode among fails, how to fix it.
func (a *app) printHints(fails []failure) {
	seen := map[string]bool{}
	for _, f := range fails {
		if f.hint != "" && !seen[f.errcode] {
			seen[f.errcode] = true
			fmt.Fprintf(a.stderr, "hint for errcode %s: %s\n", f.errcode, f.hint)
		}
	}
}
