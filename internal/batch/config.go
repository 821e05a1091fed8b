package batch

import (
	"context"
	"io"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/wait"
)

// Minter mints one code; *wxacode.Client is one.
type Minter interface {
	GetUnlimited(ctx context.Context, req wxacode.Request) ([]byte, error)
}

// Clock tells the time and sleeps. Run's quota pauses, progress lines and
// durations all go through it.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or for ctx.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error { return wait.For(ctx, d) }

// Defaults of Config's zero values.
const (
	DefaultConcurrency   = 8
	DefaultQuotaPause    = time.Second
	DefaultQuotaGiveUp   = 5 * time.Minute
	DefaultProgressEvery = 30 * time.Second
	maxQuotaPause        = time.Minute
	terminalEvery        = 500 * time.Millisecond // the live line's redraw
)

// Config is one batch run. Zero values mean the defaults named.
type Config struct {
	// Input is read a record at a time (see readRows); InputName names it
	// in errors.
	Input     io.Reader
	InputName string
	// Dir is the output directory, created if missing.
	Dir string
	// Client mints the codes, within its own rate limit.
	Client Minter
	// Request holds the code flags: each row's scene, and its page unless
	// empty, are filled in.
	Request wxacode.Request
	// Origin names the API and account the codes come from, recorded with
	// each image (see ManifestFile): a run keeps only images of its own
	// origin.
	Origin string
	// Concurrency is how many codes are minted at once (DefaultConcurrency).
	Concurrency int
	// Force mints every scene again, and replaces names the manifest
	// holds for other scenes.
	Force bool
	// StaticToken says the token cannot be renewed: a refused or expired
	// one (40001, 40014, 42001) stops the run.
	StaticToken bool
	// Hint says how to fix an API error, in the caller's terms; nil means
	// err.Hint().
	Hint func(err *wxacode.APIError) string

	// Log receives warnings, pause notices and progress; nil discards them.
	Log io.Writer
	// Terminal says Log is a terminal: progress is then one line redrawn
	// in place twice a second, not a line every ProgressEvery.
	Terminal bool
	// ProgressEvery is how often a progress line goes to a Log that is
	// not a terminal (DefaultProgressEvery).
	ProgressEvery time.Duration
	// QuotaPause is the first pause after a quota error (DefaultQuotaPause);
	// QuotaGiveUp, how long quota errors without a success end the run
	// (DefaultQuotaGiveUp).
	QuotaPause, QuotaGiveUp time.Duration
	// Clock tells the time and sleeps (RealClock).
	Clock Clock
	// SetMemoryLimit, if set, is called once the plan is made with a soft
	// memory limit for the rest of the run: what the process holds then,
	// plus room for the calls in flight (see memoryLimit). Nil leaves the
	// runtime alone; the command passes debug.SetMemoryLimit unless
	// GOMEMLIMIT is set.
	SetMemoryLimit func(bytes int64)
	// FoldsCase reports whether Dir treats names that differ only in case
	// as one; nil probes it (caseInsensitive).
	FoldsCase func(dir string) bool
	// AfterEach, if set, is called after each code is settled (written or
	// failed), with how many are.
	AfterEach func(settled int)
}

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Hint == nil {
		c.Hint = (*wxacode.APIError).Hint
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.QuotaPause <= 0 {
		c.QuotaPause = DefaultQuotaPause
	}
	if c.QuotaGiveUp <= 0 {
		c.QuotaGiveUp = DefaultQuotaGiveUp
	}
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	if c.FoldsCase == nil {
		c.FoldsCase = caseInsensitive
	}
	if c.InputName == "" {
		c.InputName = "the input"
	}
	return c
}

// Summary is what a run did.
type Summary struct {
	Rows       int // rows read
	Minted     int // images written from a call to the API
	Copied     int // images written from another name's code, without a call
	Present    int // names that already held their code
	Unrecorded int // complete images without a record of their request: minted again
	Duplicates int // rows repeating an earlier row's request and name
	Failed     int // rows in failures.csv
	Left       int // codes neither written nor failed: the same command finishes them
	Elapsed    time.Duration

	// Stopped says why the run stopped before the end: an error no scene
	// can pass, or (DirFailed) an output directory that stopped taking
	// files. Nil otherwise.
	Stopped   error
	DirFailed bool
	// Exhausted is the errcode whose pauses ran out (45009, 45011, or -1
	// for a busy token endpoint), 0 if none did.
	Exhausted int
	// Hints says how to fix the failures' API errors, once per errcode.
	Hints []Hint
}

// Hint is how to fix the failures of one errcode.
type Hint struct {
	Code string
	Text string
}
