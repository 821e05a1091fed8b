package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/batch"
)

const batchHelp = `Usage: wxacode batch -in FILE -out DIR [flags]

Mints a code for every scene in FILE ("-" for standard input) into DIR,
within the API's rate limit.

Input: the first line (after a byte order mark) is a CSV header exactly
when one of its fields, trimmed, unquoted and in any case, is "scene"; its
delimiter ("," ";" or tab) is the file's, records are RFC 4180's (a
quoted field may hold the delimiter, "" for a quote, and line breaks), and
fields may be empty. Columns come in any order: scene, and optionally page
and filename; other columns are ignored with a warning, so
DIR/failures.csv can be fed back as input to retry its rows. An empty page
means -page, an empty filename one derived from the scene. Any other first
line means one scene per line. Input is read a record at a time; a record
over 64 KiB fails on its own (a quote left open runs to the end of the
input, as RFC 4180 reads it).

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

// Batch flag defaults and bounds.
const (
	maxConcurrency = 256
	defaultRate    = "4500/min" // below the API's 5000 a minute
	apiPerMinute   = 5000       // the API's quota
)

// batchFlags are "wxacode batch"'s flags, parsed and checked.
type batchFlags struct {
	code        codeFlags
	in, out     string
	concurrency int
	rateText    string
	rate        int
	per         time.Duration
	force       bool
}

// batch runs "wxacode batch": its flags into a batch.Config, batch.Run,
// and the summary.
func (a *app) batch(ctx context.Context, args []string) int {
	const cmd = "wxacode batch"
	bf, code, stop := a.parseBatch(args)
	if stop {
		return code
	}
	// Credentials before anything touches the disk.
	var calls atomic.Int64
	client, cleanup, err := a.client(&bf.code, &calls, wxacode.WithRateLimit(bf.rate, bf.per))
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer cleanup()
	// The input before the directory: a wrong -in makes nothing.
	in, inName, err := openInput(bf.in, a.stdin)
	if err != nil {
		return a.usageError(cmd, err)
	}
	defer in.Close()
	sum, err := batch.Run(ctx, a.batchConfig(bf, client, in, inName))
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintf(a.stderr, "%s: interrupted while reading the input; nothing was sent\n", cmd)
		return exitInterrupted
	case err != nil:
		return a.usageError(cmd, err)
	}
	return a.report(ctx, bf.out, sum, calls.Load())
}

// parseBatch parses and checks the flags; it returns (flags, 0, false) to
// go on, or an exit code.
func (a *app) parseBatch(args []string) (*batchFlags, int, bool) {
	const cmd = "wxacode batch"
	bf := &batchFlags{}
	fs := newFlagSet("batch")
	bf.code.register(fs)
	fs.StringVar(&bf.in, "in", "", `input file, "-" for standard input: one scene per line, or CSV with a header naming a scene column (required)`)
	fs.StringVar(&bf.out, "out", "", "output directory, created if missing (required)")
	fs.IntVar(&bf.concurrency, "concurrency", batch.DefaultConcurrency, "requests in flight at once")
	fs.StringVar(&bf.rateText, "rate", defaultRate, "at most this many calls, as N/min, N/s or N/h")
	fs.BoolVar(&bf.force, "force", false, "mint every scene again, even those whose image is in the output directory")
	if code, stop := a.parse(fs, args, batchHelp); stop {
		return nil, code, true
	}
	var err error
	bf.rate, bf.per, err = parseRate(bf.rateText)
	switch {
	case bf.in == "":
		err = errors.New("-in is required")
	case bf.out == "":
		err = errors.New("-out is required")
	case bf.concurrency < 1 || bf.concurrency > maxConcurrency:
		err = fmt.Errorf("-concurrency must be from 1 to %d", maxConcurrency)
	case err == nil:
		err = bf.code.check()
	}
	if err != nil {
		return nil, a.usageError(cmd, err), true
	}
	if perMinute := float64(bf.rate) * float64(time.Minute) / float64(bf.per); perMinute > apiPerMinute {
		fmt.Fprintf(a.stderr, "%s: warning: -rate %s is %.0f calls a minute, above the API's %d: the service will answer 45009 to the excess, and the run will pause for it\n", cmd, bf.rateText, perMinute, apiPerMinute)
	}
	return bf, 0, false
}

// openInput opens the input: the file at path, or stdin for "-". name is
// what errors call it.
func openInput(path string, stdin io.Reader) (r io.ReadCloser, name string, err error) {
	if path == "-" {
		return io.NopCloser(stdin), "standard input", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, path, fmt.Errorf("input: %w", err)
	}
	return f, path, nil
}

// batchConfig is the engine's Config for the flags.
func (a *app) batchConfig(bf *batchFlags, client *wxacode.Client, in io.Reader, inName string) batch.Config {
	static := a.staticToken(&bf.code)
	return batch.Config{
		Input: in, InputName: inName, Dir: bf.out,
		Client:         client,
		Request:        bf.code.request("", ""),
		Origin:         a.origin(&bf.code),
		Concurrency:    bf.concurrency,
		Force:          bf.force,
		StaticToken:    static,
		Hint:           func(err *wxacode.APIError) string { return hint(err, static) },
		Log:            a.stderr,
		Terminal:       a.terminal,
		SetMemoryLimit: a.setMemoryLimit,
	}
}

// report prints the summary, and why the run stopped if it did, and
// returns the exit code.
func (a *app) report(ctx context.Context, dir string, s batch.Summary, calls int64) int {
	const cmd = "wxacode batch"
	interrupted := ctx.Err() != nil && s.Left > 0 && s.Stopped == nil && s.Exhausted == 0
	line := summaryLine(dir, s, calls)
	if interrupted {
		line += fmt.Sprintf("; interrupted with %d left: run the same command again to finish", s.Left)
	}
	fmt.Fprintln(a.stderr, line)
	switch {
	case s.Stopped != nil:
		fmt.Fprintf(a.stderr, "%s: stopped: %s\n", cmd, s.Stopped)
		return exitFailed
	case s.Exhausted == wxacode.CodeSystemBusy:
		fmt.Fprintf(a.stderr, "%s: the token endpoint stayed busy (-1): %s left; run the same command later\n", cmd, plural(s.Left, "scene"))
	case s.Exhausted != 0:
		fmt.Fprintf(a.stderr, "%s: quota exhausted: %d scenes left; run the same command later\n", cmd, s.Left)
	}
	for _, h := range s.Hints {
		fmt.Fprintf(a.stderr, "hint for errcode %s: %s\n", h.Code, h.Text)
	}
	switch {
	case s.Exhausted != 0:
		return exitFailed
	case interrupted:
		return exitInterrupted
	case s.Failed > 0:
		return exitFailed
	}
	return exitOK
}

// summaryLine is "wxacode batch: 3 scenes: 2 minted, 1 already present,
// 0 failed, 2 calls, in 1.2s (1.7/s)", with the rarer counts where they
// are not zero.
func summaryLine(dir string, s batch.Summary, calls int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wxacode batch: %s: %d minted", plural(s.Rows, "scene"), s.Minted)
	if s.Copied > 0 {
		fmt.Fprintf(&b, ", %d copied", s.Copied)
	}
	fmt.Fprintf(&b, ", %d already present", s.Present)
	if s.Unrecorded > 0 {
		fmt.Fprintf(&b, " (%s without a record of their request, not trusted)", plural(s.Unrecorded, "image"))
	}
	if s.Duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicates", s.Duplicates)
	}
	fmt.Fprintf(&b, ", %d failed", s.Failed)
	if s.Failed > 0 && !s.DirFailed {
		fmt.Fprintf(&b, " (see %s)", filepath.Join(dir, batch.FailuresFile))
	}
	fmt.Fprintf(&b, ", %s, in %s (%.1f/s)", plural(int(calls), "call"), s.Elapsed.Round(time.Millisecond), float64(s.Minted+s.Copied)/max(s.Elapsed.Seconds(), 1e-9))
	return b.String()
}

// plural returns "1 scene", "2 scenes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
