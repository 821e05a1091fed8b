package batch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/imagecheck"
)

// run is the minting part of a batch: workers take the plan's jobs and
// settle each (written, or failed) until done, halted, or ctx ends.
type run struct {
	cfg    *Config
	man    *manifest
	plan   *plan
	origin short
	gate   quotaGate
	ctx    context.Context // the workers': ends with the caller's, or when the quota runs out
	stop   func()          // ends ctx

	halted    chan struct{} // closed by halt: send nothing more
	haltOnce  sync.Once
	haltErr   error // why, set before halted is closed
	haltIsDir bool

	mu      sync.Mutex // guards the counts and fails
	minted  int
	copied  int
	failed  int
	fails   []failure
	settled int
}

// haltError stops a run: an error no scene can pass, or a directory that
// takes no more files.
type haltError struct {
	dir bool // the output directory failed
	err error
}

func (e *haltError) Error() string { return e.err.Error() }

// dirError says that dir stopped taking files, and what to do.
func dirError(dir string, err error) error {
	return &haltError{dir: true, err: fmt.Errorf("output directory %s cannot be written (%w); no more calls were sent: free it and run the same command again", dir, unwrapPath(err))}
}

// halt stops the run for err: no more jobs are started, those under way
// finish.
func (r *run) halt(err error) {
	r.haltOnce.Do(func() {
		r.haltErr = err
		var he *haltError
		r.haltIsDir = errors.As(err, &he) && he.dir
		close(r.halted)
	})
}

func (r *run) isHalted() bool {
	select {
	case <-r.halted:
		return true
	default:
		return false
	}
}

// work feeds the plan's jobs to the workers until done, halted, or ctx
// ends.
func (r *run) work(ctx context.Context) {
	jobs := r.plan.jobs
	ch := make(chan int32)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, max(len(jobs), 1)) {
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
func (r *run) do(ctx context.Context, j int32) {
	if from, ok := r.plan.copyFrom[j]; ok {
		if img, err := os.ReadFile(filepath.Join(r.cfg.Dir, from)); err == nil && imagecheck.Check(img) == "" {
			r.save(j, img, false)
			return
		}
	}
	r.mint(ctx, j)
}

// mint makes one code and saves it, pausing and trying again on quota
// errors. An interrupted job, one left when the quota ran out, or one
// stopped by a halt is neither minted nor failed: a rerun does it.
func (r *run) mint(ctx context.Context, j int32) {
	first := r.plan.jobs[j].first
	req := requestFor(r.cfg.Request, first.scene, first.page)
	for {
		if r.isHalted() || !r.gate.wait(ctx) {
			return
		}
		img, err := r.cfg.Client.GetUnlimited(ctx, req)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			r.gate.success()
			r.save(j, img, true)
			return
		case r.stopsRun(err) || r.isHalted():
			return // a halt is not this job's failure: a rerun does it
		case r.pauses(err):
			continue
		}
		r.settle(j, 0, false, r.failureOf(err))
		return
	}
}

// stopsRun halts the run for an error no scene can pass, and reports
// whether it did.
func (r *run) stopsRun(err error) bool {
	apiErr, fatal := fatalAPIError(err, r.cfg.StaticToken)
	if !fatal {
		return false
	}
	msg := strings.TrimPrefix(err.Error(), "wxacode: ")
	if h := r.cfg.Hint(apiErr); h != "" && !strings.Contains(msg, h) {
		msg += " (" + h + ")"
	}
	r.halt(&haltError{err: errors.New(msg)})
	return true
}

// pauses starts (or joins) a pause of every worker for a quota error or
// a busy token endpoint, and reports whether err was one. When the pauses
// have run out, it ends the run.
func (r *run) pauses(err error) bool {
	var apiErr *wxacode.APIError
	if !errors.As(err, &apiErr) || !pausesRun(err, apiErr.Code) {
		return false
	}
	d, started, exhausted := r.gate.trip(apiErr.Code)
	if exhausted {
		r.stop()
	} else if started && !r.cfg.Terminal {
		fmt.Fprintf(r.cfg.Log, "wxacode batch: paused for %s: resuming in %s\n", pauseReason(apiErr.Code), d.Round(time.Second))
	}
	return true
}

// failureOf is the failures.csv entry of err (its row is filled in by
// settle).
func (r *run) failureOf(err error) *failure {
	fl := &failure{errmsg: strings.TrimPrefix(err.Error(), "wxacode: ")}
	var apiErr *wxacode.APIError
	if errors.As(err, &apiErr) {
		fl.errcode, fl.errmsg, fl.hint = strconv.Itoa(apiErr.Code), apiErr.Message, r.cfg.Hint(apiErr)
	}
	return fl
}

// fatalAPIError reports whether err is one that no scene can pass: the
// credentials or the account are wrong, so every further call would fail
// the same way. A refused or expired token is such an error when it
// cannot be renewed (static).
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
	case wxacode.CodeInvalidCredential, wxacode.CodeInvalidAccessToken, wxacode.CodeAccessTokenExpired:
		return apiErr, static
	}
	return nil, false
}

// save writes img under each of j's names and records them; a write error
// halts the run.
func (r *run) save(j int32, img []byte, minted bool) {
	ext := wxacode.ImageExt(img)
	written := 0
	var werr error
	key := r.plan.jobs[j].key
	r.plan.rowsOf(j, func(rw row) {
		if werr == nil {
			werr = r.write(rw, key, ext, img)
		}
		if werr == nil {
			written++
		}
	})
	if werr != nil {
		r.halt(dirError(r.cfg.Dir, werr))
	}
	r.settle(j, written, minted, nil)
}

// write writes img under rw's name and records it: the old record goes
// first (a crash after the rename must not leave it standing for the new
// image), the new one after the rename.
func (r *run) write(rw row, key requestKey, ext string, img []byte) error {
	base := rw.base()
	name := base + ext
	if err := r.man.replacing(name); err != nil {
		return err
	}
	if err := writeAtomic(r.cfg.Dir, name, img); err != nil {
		return err
	}
	// An image of the other type under the same name is of an older
	// request: it would be taken for this one's.
	for _, other := range []string{".jpg", ".png"} {
		if other != ext {
			_ = os.Remove(filepath.Join(r.cfg.Dir, base+other))
		}
	}
	return r.man.record(name, record{key: key, origin: r.origin, scene: shortOf(rw.scene)})
}

// settle records the outcome of one job: written images (the first of a
// minted job counts as minted, the others as copies), or a failure of
// each of its rows.
func (r *run) settle(j int32, written int, minted bool, f *failure) {
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
	if r.cfg.AfterEach != nil {
		r.cfg.AfterEach(n)
	}
}

// counts returns how many scenes failed and how many jobs were settled so
// far.
func (r *run) counts() (failed, settled int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed, r.settled
}
