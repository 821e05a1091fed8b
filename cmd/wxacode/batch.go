package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/atomicfile"
	"github.com/go-wxacode/wxacode/internal/imagecheck"
)

const batchHelp = `Usage: wxacode batch -in FILE -out DIR [flags]

Mints a code for every scene in FILE ("-" for standard input) into DIR,
within the API's rate limit.

Input: the first line (after a byte order mark) is a CSV header exactly
when one of its fields, trimmed, unquoted and in any case, is "scene"; its
delimiter ("," ";" or tab) is the file's, each line is one record, and
fields may be empty. Columns come in any order: scene, and optionally page
and filename; other columns are ignored with a warning, so
DIR/failures.csv can be fed back as input to retry its rows. An empty page
means -page, an empty filename one derived from the scene. Any other first
line means one scene per line. Input is read a line at a time; a line over
64 KiB fails on its own.

Output: DIR/NAME.jpg (or .png with -transparent: the extension follows the
image received). NAME is the row's filename, or the scene with every byte
other than A-Z a-z 0-9 - _ . written as %XX, and a leading "." too:
"id=42" -> id%3D42.jpg, so no scene can reach outside DIR. Files are
written under a temporary name, synced and renamed, so DIR never holds
half an image. The same code (scene and page) under several filenames is
minted once and written under each. On a directory whose file names ignore
case, two names that differ only in case are a failure, never an
overwrite.

Resuming: DIR/.wxacode.manifest records what made each image: the
request (scene, page and every code flag), the origin (-fake, or the base
URL and WECHAT_APPID) and the scene. A complete image counts as done only
with a record of the row's request from this origin; one minted with
other flags, by another API or account, or by -fake, is minted again, and
so is an image without a record (copied in, an older version's, or the
manifest gone): none is trusted. A name the manifest holds for another
scene is a failure, not a replacement. A torn last line is ignored; a
manifest that cannot be read (not a regular file, a line over 4 KiB)
stops the run before any call, exit 2. -force mints every scene again and
replaces such names. The same scene, page and name twice is minted once.
One run at a time holds DIR (a lock left by a killed run does not count),
and at start removes every temporary file of ours in DIR.

Failures go to DIR/failures.csv (scene,page,filename,errcode,errmsg: each
row's own page and filename as given, empty where the input had none;
errcode is empty for errors found locally or in transport), and the exit
code is then 1. Feed it back with the same flags to retry those rows.
Scenes that break the API's rules fail without a call.

Stops at once, exit code 1, with one line saying why (the scenes not yet
tried are not failures: the next run mints them):
  - an error no scene can pass: a token request answered 40013, 40125,
    41002, 41004 or 40164 (AppID, secret, IP whitelist), a call answered
    48001 or 41001, or WECHAT_ACCESS_TOKEN answered 40001, 40014 or 42001;
  - DIR stops taking files (disk full, read-only): calls in flight end,
    no more are sent.

Quota (45009/45011), or a token endpoint answering -1 (busy): all workers
pause, 1 s at first and twice as long each time up to 1 min, and the scene
is tried again: no scene fails for it.
Each pause is shown (on a terminal in the live line, otherwise one line
when it starts). After 5 minutes of quota errors without a success, the
run stops with "quota exhausted: N scenes left", exit code 1; those scenes
are not failures. -rate above the API's 5000 a minute is allowed, with a
warning.

-timeout bounds each HTTP exchange with the API; time queued for the rate
limit, or between retries, does not count. When standard error is not a
terminal, a progress line is printed every 30 s.

-fake runs against an embedded fake of the API, with the service's quota
of 5000 calls a minute: a -fake batch of more pauses each minute.

Exit codes: 0 every scene done; 1 some failed, the quota ran out, or the
run stopped (see above); 2 bad flags, input or output directory, checked
before any call, or DIR in use by another run; 130 interrupted (Ctrl-C),
143 SIGTERM, 129 SIGHUP: requests in flight are cancelled, temporary files
removed, and the same command finishes the rest.

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
	apiPerMinute       = 5000       // the API's quota
	firstQuotaPause    = time.Second
	maxQuotaPause      = time.Minute
	quotaGiveUp        = 5 * time.Minute // of quota errors without a success
	logProgressEvery   = 30 * time.Second
)

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
	if perMinute := float64(rate) * float64(time.Minute) / float64(per); perMinute > apiPerMinute {
		fmt.Fprintf(a.stderr, "%s: warning: -rate %s is %.0f calls a minute, above the API's %d: the service will answer 45009 to the excess, and the run will pause for it\n", cmd, *rateFlag, perMinute, apiPerMinute)
	}
	// Credentials before anything touches the disk.
	var calls atomic.Int64
	client, cleanup, err := a.client(&f, &calls, wxacode.WithRateLimit(rate, per))
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer cleanup()
	// The input before the directory: a wrong -in makes nothing.
	inFile, inName, err := openInput(*in, a.stdin)
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer inFile.Close()
	if err := checkWritable(*out, true); err != nil {
		return a.usageError(cmd, err)
	}
	unlock, err := lockDir(*out)
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer unlock()
	// Holding the lock, no temporary file of ours can be a live run's.
	atomicfile.RemoveTemps(*out, 0)
	man, err := loadManifest(*out)
	if err != nil {
		return a.usageError(cmd, err)
	}
	probe := caseInsensitive
	if a.caseInsensitive != nil {
		probe = a.caseInsensitive
	}
	// The input is planned as it is read, so that memory follows the plan
	// (a few hundred bytes a row), never the file; nothing is sent before
	// all of it is read.
	origin := a.origin(&f)
	pl := newPlanner(&f, *out, *force, probe(*out), man, origin)
	ignored, err := readOpenRows(ctx, inFile, inName, pl.add)
	if ctx.Err() != nil {
		fmt.Fprintf(a.stderr, "%s: interrupted while reading the input; nothing was sent\n", cmd)
		return exitInterrupted
	}
	if err != nil {
		return a.usageError(cmd, err)
	}
	if len(ignored) > 0 {
		fmt.Fprintf(a.stderr, "%s: ignoring the input's unknown columns: %s\n", cmd, strings.Join(ignored, ", "))
	}
	plan := pl.finish()
	keepMemoryNearPlan(*concurrency)

	start := time.Now()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	r := &batchRun{app: a, client: client, flags: &f, dir: *out, man: man, plan: &plan, total: len(plan.jobs), stop: stopRun, halted: make(chan struct{}),
		origin: origin, static: a.staticToken(&f), calls: &calls}
	r.gate = quotaGate{first: orDefault(a.quotaBackoff, firstQuotaPause), giveUp: orDefault(a.quotaGiveUp, quotaGiveUp)}
	r.fails = plan.fails
	r.failed = len(plan.fails)
	stopProgress := r.showProgress(start)
	r.run(runCtx, *concurrency)
	stopProgress()
	if err := man.close(); err != nil {
		r.halt(dirError(*out, err))
	}
	if r.haltErr == nil || !r.haltIsDir {
		if err := writeFailures(*out, r.fails); err != nil {
			r.halt(dirError(*out, err))
		}
	}

	elapsed := time.Since(start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %d minted", cmd, plural(plan.rows, "scene"), r.minted)
	if r.copied > 0 {
		fmt.Fprintf(&b, ", %d copied", r.copied)
	}
	fmt.Fprintf(&b, ", %d already present", plan.present)
	if plan.unrecorded > 0 {
		fmt.Fprintf(&b, " (%s without a record of their request, not trusted)", plural(plan.unrecorded, "image"))
	}
	if plan.duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicates", plan.duplicates)
	}
	fmt.Fprintf(&b, ", %d failed", r.failed)
	if r.failed > 0 && !r.haltIsDir {
		fmt.Fprintf(&b, " (see %s)", filepath.Join(*out, failuresFile))
	}
	fmt.Fprintf(&b, ", %s, in %s (%.1f/s)", plural(int(r.calls.Load()), "call"), elapsed.Round(time.Millisecond), float64(r.minted+r.copied)/max(elapsed.Seconds(), 1e-9))
	left := len(plan.jobs) - r.settled
	switch {
	case r.haltErr != nil:
		fmt.Fprintln(a.stderr, b.String())
		fmt.Fprintf(a.stderr, "%s: stopped: %s\n", cmd, r.haltErr)
		return exitFailed
	case r.gate.isExhausted():
		fmt.Fprintln(a.stderr, b.String())
		if code, _, _ := r.gate.paused(); code == wxacode.CodeSystemBusy {
			fmt.Fprintf(a.stderr, "%s: the token endpoint stayed busy (-1): %s left; run the same command later\n", cmd, plural(left, "scene"))
		} else {
			fmt.Fprintf(a.stderr, "%s: quota exhausted: %d scenes left; run the same command later\n", cmd, left)
		}
		a.printHints(r.fails)
		return exitFailed
	case ctx.Err() != nil && left > 0:
		fmt.Fprintf(&b, "; interrupted with %d left: run the same command again to finish", left)
		fmt.Fprintln(a.stderr, b.String())
		a.printHints(r.fails)
		return exitInterrupted
	}
	fmt.Fprintln(a.stderr, b.String())
	a.printHints(r.fails)
	if r.failed > 0 {
		return exitFailed
	}
	return exitOK
}

// keepMemoryNearPlan gives the planner's garbage back, then sets a soft
// memory limit a headroom above what the plan holds, unless GOMEMLIMIT
// says otherwise. Every image minted becomes garbage once written: with
// the default GC it would pile up to twice the plan (a 100,000-row batch
// then peaked near 70 MB); with the limit, the collector takes it back
// promptly and memory follows the plan plus the calls in flight.
func keepMemoryNearPlan(concurrency int) {
	debug.FreeOSMemory()
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	inUse := int64(ms.Sys - ms.HeapReleased)
	debug.SetMemoryLimit(inUse + 16<<20 + int64(concurrency)*128<<10)
}

// plural returns "1 scene", "2 scenes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// dirError says that dir stopped taking files, and what to do.
func dirError(dir string, err error) error {
	return &haltError{dir: true, err: fmt.Errorf("output directory %s cannot be written (%w); no more calls were sent: free it and run the same command again", dir, unwrapPath(err))}
}

// unwrapPath returns the cause of a file error without the temporary
// file's name.
func unwrapPath(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// haltError stops a run: an error no scene can pass, or a directory that
// takes no more files.
type haltError struct {
	dir bool // the output directory failed
	err error
}

func (e *haltError) Error() string { return e.err.Error() }

// orDefault returns v, or def when v is zero.
func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// fatalAPIError reports whether err is one that no scene can pass: the
// credentials or the account are wrong, so every further call would fail
// the same way. A refused or expired token is such an error when it is
// WECHAT_ACCESS_TOKEN's (static): the command cannot renew it.
func fatalAPIError(err error, static bool) (*wxacode.APIError, bool) {
	var apiErr *wxacode.APIError
	if !errors.As(err, &apiErr) {
		return nil, false
	}
	var tokErr *wxacode.TokenError
	if errors.As(err, &tokErr) {
		switch apiErr.Code {
		case 40013, wxacode.CodeInvalidAppSecret, 41002, 41004, wxacode.CodeIPNotWhitelisted:
			return apiErr, true // wrong AppID or secret, IP not whitelisted
		}
	}
	switch apiErr.Code {
	case wxacode.CodeUnauthorized, wxacode.CodeAccessTokenMissing, wxacode.CodeIPNotWhitelisted:
		return apiErr, true
	}
	if static && refusesToken(apiErr.Code) {
		return apiErr, true
	}
	return nil, false
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

// batchRun is the minting part of a batch.
type batchRun struct {
	app    *app
	client *wxacode.Client
	flags  *codeFlags
	dir    string
	man    *manifest
	plan   *batchPlan
	total  int
	gate   quotaGate
	stop   func() // ends the run (quota exhausted)
	origin short  // the API and account, for the records
	static bool   // the token is WECHAT_ACCESS_TOKEN's
	calls  *atomic.Int64

	halted    chan struct{} // closed by halt: send nothing more
	haltOnce  sync.Once
	haltErr   error // why, set before halted is closed
	haltIsDir bool

	mu      sync.Mutex // guards the counts and fails
	minted  int        // images written from a call to the API
	copied  int        // images written from another name's code
	failed  int
	fails   []failure
	settled int
}

// halt stops the run for err: no more jobs are started, those under way
// finish.
func (r *batchRun) halt(err error) {
	r.haltOnce.Do(func() {
		r.haltErr = err
		var he *haltError
		r.haltIsDir = errors.As(err, &he) && he.dir
		close(r.halted)
	})
}

func (r *batchRun) isHalted() bool {
	select {
	case <-r.halted:
		return true
	default:
		return false
	}
}

// run feeds the plan's jobs to concurrency workers until done, halted, or
// ctx ends.
func (r *batchRun) run(ctx context.Context, concurrency int) {
	jobs := r.plan.jobs
	ch := make(chan int32)
	var wg sync.WaitGroup
	for range min(concurrency, max(len(jobs), 1)) {
		wg.Go(func() {
			for j := range ch {
				r.do(ctx, j)
			}
		})
	}
feed:
	for i := range jobs {
		select {
		case ch <- int32(i):
		case <-ctx.Done():
			break feed
		case <-r.halted:
			break feed
		}
	}
	close(ch)
	wg.Wait()
}

// do makes one job's code, by copying a file that holds it or by minting
// it, and writes it under each of the job's names.
func (r *batchRun) do(ctx context.Context, j int32) {
	if from, ok := r.plan.copyFrom[j]; ok {
		if img, err := os.ReadFile(filepath.Join(r.dir, from)); err == nil && imagecheck.Check(img) == "" {
			r.save(j, img, false)
			return
		}
	}
	r.mint(ctx, j)
}

// mint makes one code and saves it, pausing and trying again on quota
// errors. An interrupted job, one left when the quota ran out, or one
// stopped by a halt is neither minted nor failed: a rerun does it.
func (r *batchRun) mint(ctx context.Context, j int32) {
	first := r.plan.jobs[j].first
	req := r.flags.request(first.scene, first.page)
	for {
		if r.isHalted() || !r.gate.wait(ctx) {
			return
		}
		img, err := r.client.GetUnlimited(ctx, req)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			r.gate.success()
			r.save(j, img, true)
			return
		}
		if apiErr, fatal := fatalAPIError(err, r.static); fatal {
			msg := strings.TrimPrefix(err.Error(), "wxacode: ")
			if h := hint(apiErr, r.static); h != "" && !strings.Contains(msg, h) {
				msg += " (" + h + ")"
			}
			r.halt(&haltError{err: errors.New(msg)})
			return
		}
		if r.isHalted() {
			return // stopped meanwhile: this job is not a failure of its own
		}
		var apiErr *wxacode.APIError
		isAPI := errors.As(err, &apiErr)
		if isAPI && pausesRun(err, apiErr.Code) {
			d, started, exhausted := r.gate.trip(apiErr.Code)
			if exhausted {
				r.stop()
			} else if started && !r.app.terminal {
				fmt.Fprintf(r.app.stderr, "wxacode batch: paused for %s: resuming in %s\n", pauseReason(apiErr.Code), d.Round(time.Second))
			}
			continue
		}
		fl := failure{errmsg: strings.TrimPrefix(err.Error(), "wxacode: ")}
		if isAPI {
			fl.errcode, fl.errmsg, fl.hint = strconv.Itoa(apiErr.Code), apiErr.Message, hint(apiErr, r.static)
		}
		r.settle(j, 0, false, &fl)
		return
	}
}

// save writes img under each of j's names and records them; a write error
// halts the run.
func (r *batchRun) save(j int32, img []byte, minted bool) {
	ext := wxacode.ImageExt(img)
	written := 0
	var werr error
	key := r.plan.jobs[j].key
	r.plan.rowsOf(j, func(rw row) {
		if werr != nil {
			return
		}
		base := rw.base()
		name := base + ext
		// The old record goes first: a crash after the rename must not
		// leave it standing for the new image.
		if werr = r.man.replacing(name); werr != nil {
			return
		}
		if werr = writeAtomic(r.dir, name, img); werr != nil {
			return
		}
		// An image of the other type under the same name is of an older
		// request: it would be taken for this one's.
		for _, other := range []string{".jpg", ".png"} {
			if other != ext {
				_ = os.Remove(filepath.Join(r.dir, base+other))
			}
		}
		written++
		werr = r.man.record(name, record{key: key, origin: r.origin, scene: shortOf(rw.scene)})
	})
	if werr != nil {
		r.halt(dirError(r.dir, werr))
	}
	r.settle(j, written, minted, nil)
}

// settle records the outcome of one job: written images, or a failure of
// each of its rows.
func (r *batchRun) settle(j int32, written int, minted bool, f *failure) {
	r.mu.Lock()
	if minted && written > 0 {
		r.minted++
		written--
	}
	r.copied += written
	if f != nil {
		r.plan.rowsOf(j, func(rw row) {
			fl := *f
			fl.row = rw
			r.fails = append(r.fails, fl)
			r.failed++
		})
	}
	r.settled++
	n := r.settled
	r.mu.Unlock()
	if r.app.afterEach != nil {
		r.app.afterEach(n)
	}
}

// counts returns how many scenes failed and how many jobs were settled so
// far.
func (r *batchRun) counts() (failed, settled int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed, r.settled
}
