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
)

const batchHelp = `Usage: wxacode batch -in FILE -out DIR [flags]

Mints a code for every scene in FILE into DIR, within the API's rate limit.

Input: one scene per line, or CSV with a header line naming its columns
among scene, page and filename (e.g. "scene,page,filename"); an empty page
means -page, an empty filename means one derived from the scene.

Output: DIR/NAME.jpg (or .png with -transparent: the extension follows the
image received). NAME is the scene with every byte other than A-Z a-z 0-9
- _ . written as %XX, and a leading "." too: "id=42" -> id%3D42.jpg, so no
scene can reach outside DIR. Files are written under a temporary name and
renamed, so DIR never holds half an image.

Resuming: a scene whose image is already in DIR is skipped, so after a crash
or Ctrl-C the same command finishes the rest. The same scene and page twice
is minted once.

Failures go to DIR/failures.csv (scene,errcode,errmsg; errcode is empty for
errors found locally or in transport), and the exit code is then 1. Scenes
that break the API's rules fail without a call. On 45009/45011 (quota) all
workers pause, with growing pauses, and the scene is tried again.

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
	maxQuotaRetries    = 6          // tries of one scene after quota errors
	maxQuotaBackoff    = time.Minute
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
	in := fs.String("in", "", "input file: one scene per line, or CSV with a scene,page,filename header (required)")
	out := fs.String("out", "", "output directory, created if missing (required)")
	concurrency := fs.Int("concurrency", defaultConcurrency, "requests in flight at once")
	rateFlag := fs.String("rate", defaultRate, "at most this many calls, as N/min, N/s or N/h")
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
	rows, err := readRows(*in)
	if err != nil {
		return a.usageError(cmd, err)
	}
	if err := checkWritable(*out, true); err != nil {
		return a.usageError(cmd, err)
	}
	removeStaleTemps(*out)
	plan := planBatch(rows, &f, *out)

	client, cleanup, err := a.client(&f, wxacode.WithRateLimit(rate, per))
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer cleanup()

	start := time.Now()
	r := &batchRun{app: a, client: client, flags: &f, dir: *out, total: len(plan.jobs)}
	r.gate.first = orDefault(a.quotaBackoff, time.Second)
	r.failed = len(plan.fails)
	r.fails = plan.fails
	stopProgress := r.showProgress(start)
	r.run(ctx, plan.jobs, *concurrency)
	stopProgress()

	if err := writeFailures(*out, r.fails); err != nil {
		fmt.Fprintf(a.stderr, "%s: %v\n", cmd, err)
		return exitFailed
	}
	elapsed := time.Since(start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d scenes: %d minted, %d already present", cmd, len(rows), r.minted, plan.present)
	if plan.duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicates", plan.duplicates)
	}
	fmt.Fprintf(&b, ", %d failed", r.failed)
	if r.failed > 0 {
		fmt.Fprintf(&b, " (see %s)", filepath.Join(*out, failuresFile))
	}
	fmt.Fprintf(&b, ", in %s (%.1f/s)", elapsed.Round(time.Millisecond), float64(r.minted)/max(elapsed.Seconds(), 1e-9))
	if left := len(plan.jobs) - r.settled; ctx.Err() != nil && left > 0 {
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
// unsafe or clashing file names failed locally, present images skipped.
func planBatch(rows []row, f *codeFlags, dir string) batchPlan {
	var p batchPlan
	seen := make(map[[2]string]bool)
	names := make(map[string]int) // file base -> line that took it
	for _, rw := range rows {
		req := f.request(rw.scene, rw.page)
		key := [2]string{req.Scene, req.Page}
		if seen[key] {
			p.duplicates++
			continue
		}
		seen[key] = true
		fail := func(msg string) { p.fails = append(p.fails, failure{line: rw.line, scene: rw.scene, errmsg: msg}) }
		if err := req.Validate(); err != nil {
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
		if line, taken := names[base]; taken {
			fail(fmt.Sprintf("file name %s is also the name for line %d", base, line))
			continue
		}
		names[base] = rw.line
		if presentImage(dir, base) != "" {
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
	flags  *codeFlags
	dir    string
	total  int
	gate   quotaGate

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

// mint makes one code and saves it, pausing and retrying on quota errors.
// An interrupted scene is neither minted nor failed: a rerun does it.
func (r *batchRun) mint(ctx context.Context, j job) {
	for try := 1; ; try++ {
		if !r.gate.wait(ctx) {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, r.flags.timeout)
		img, err := r.client.GetUnlimited(cctx, j.req)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			r.gate.reset()
			if err := writeAtomic(r.dir, j.base+wxacode.ImageExt(img), img); err != nil {
				r.settle(&failure{line: j.line, scene: j.scene, errmsg: err.Error()})
				return
			}
			r.settle(nil)
			return
		}
		var apiErr *wxacode.APIError
		isAPI := errors.As(err, &apiErr)
		if isAPI && (apiErr.Code == wxacode.CodeDailyQuotaExceeded || apiErr.Code == wxacode.CodeMinuteQuotaExceeded) && try < maxQuotaRetries {
			r.gate.trip()
			continue
		}
		fl := failure{line: j.line, scene: j.scene, errmsg: strings.TrimPrefix(err.Error(), "wxacode: ")}
		if isAPI {
			fl.errcode, fl.errmsg = strconv.Itoa(apiErr.Code), apiErr.Message
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
// maxQuotaBackoff; a success resets it.
type quotaGate struct {
	first time.Duration

	mu      sync.Mutex
	until   time.Time
	backoff time.Duration
}

// wait returns once any pause is over, or false if ctx ended.
func (g *quotaGate) wait(ctx context.Context) bool {
	g.mu.Lock()
	d := time.Until(g.until)
	g.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	return pause(ctx, d)
}

// trip starts a pause, unless one is already running.
func (g *quotaGate) trip() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if now.Before(g.until) {
		return // the workers that hit the quota together share one pause
	}
	if g.backoff == 0 {
		g.backoff = g.first
	} else {
		g.backoff = min(2*g.backoff, maxQuotaBackoff)
	}
	g.until = now.Add(g.backoff)
}

// reset forgets earlier pauses after a success.
func (g *quotaGate) reset() {
	g.mu.Lock()
	g.backoff = 0
	g.mu.Unlock()
}
