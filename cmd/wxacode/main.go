// Command wxacode mints WeChat mini program codes with getUnlimitedQRCode:
// one with "wxacode get", or thousands with "wxacode batch", which is
// resumable and stays within the API's rate limit. "wxacode fake" serves
// the fake API of package wxacodetest, for test suites in any language.
//
// Credentials come from the environment, never from flags (flags show in
// ps): WECHAT_APPID and WECHAT_SECRET (tokens from stable_token), or
// WECHAT_ACCESS_TOKEN. With -fake the command runs against an embedded
// wxacodetest server and needs no credentials:
//
//	go run ./cmd/wxacode get -fake -scene 'id=42' -o code.jpg
//
// Exit codes: 0 success; 1 a code could not be minted, the quota ran out,
// or a batch stopped (credentials refused, output directory unwritable); 2
// bad flags, input or output directory (checked before any call), or an
// output directory another batch holds; 130 interrupted by Ctrl-C, 143 by
// SIGTERM, 129 by SIGHUP (run the same batch again to finish). The manual
// is README.md beside this file, and -h.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Exit codes. A run ended by a signal exits 128 + the signal's number:
// 130 for SIGINT (Ctrl-C), 143 for SIGTERM, 129 for SIGHUP.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// exitCodesHelp ends every command's -h.
const exitCodesHelp = `Exit codes: 0 done; 1 a code could not be minted, the quota ran out, or a
batch stopped (credentials refused, output directory unwritable); 2 bad
flags, input or output directory, checked before any call; 130 interrupted
by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (a batch then finishes when run
again).
`

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	var got atomic.Value // the signal that ended the run
	go func() {
		s := <-sigs
		got.Store(s)
		// A second signal ends the process at once.
		signal.Reset(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		cancel()
	}()
	a := &app{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		terminal: isTerminal(os.Stderr),
	}
	code := a.run(ctx, os.Args[1:])
	if s, ok := got.Load().(syscall.Signal); ok && code == exitInterrupted {
		code = 128 + int(s)
	}
	cancel()
	os.Exit(code)
}

// app is one run of the command, with its outside world made explicit so
// that tests run it in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	terminal       bool // stderr is a terminal: show live progress

	// Test hooks; zero values mean the real thing.
	afterEach       func(settled int)     // batch: after each scene is settled
	quotaBackoff    time.Duration         // batch: first pause after 45009/45011
	quotaGiveUp     time.Duration         // batch: quota errors without a success that end the run
	progressEvery   time.Duration         // batch: progress lines when stderr is not a terminal
	caseInsensitive func(dir string) bool // batch: whether dir ignores case in names
}

const usage = `wxacode mints WeChat mini program codes (getUnlimitedQRCode).

Usage:
  wxacode get   -scene S -o FILE [code flags]
  wxacode batch -in FILE -out DIR [-concurrency N] [-rate N/min] [-force] [code flags]
  wxacode fake  [-addr 127.0.0.1:8080] [-quota N] [-v] …   the fake API as a server, for tests

Code flags (both commands):
  -page P             page to open, e.g. pages/item/index (default: home page)
  -width N            280 to 1280 pixels (default 430)
  -env V              release, trial or develop (default release)
  -skip-path-check    allow a page not in the published release (check_path=false)
  -color RRGGBB       line colour, e.g. 07C160 (default black)
  -auto-color         let WeChat pick the line colour
  -transparent        transparent background (the service then answers PNG)
  -fake               run against an embedded fake of the WeChat API (no credentials;
                      its quota is the service's 5000 calls a minute)
  -base-url URL       API base URL, for proxies and test servers
  -timeout D          limit for each HTTP exchange with the API (default 30s);
                      time queued for the rate limit or between retries is not counted

Credentials (environment only; never flags):
  WECHAT_APPID + WECHAT_SECRET   tokens from the stable_token endpoint
  WECHAT_ACCESS_TOKEN            a token managed elsewhere

Examples:
  wxacode get -fake -scene 'id=42' -o code.jpg
  WECHAT_APPID=wx… WECHAT_SECRET=… wxacode get -scene 'id=42' -page pages/item/index -o -  > code.jpg
  wxacode batch -in scenes.txt -out codes/ -page pages/item/index -rate 4500/min

Run "wxacode help get", "wxacode help batch" or "wxacode help fake" for details, "wxacode -version"
for the version.

` + exitCodesHelp

// run dispatches to a command and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "get":
		return a.get(ctx, args[1:])
	case "batch":
		return a.batch(ctx, args[1:])
	case "fake":
		return a.fake(ctx, args[1:])
	case "help":
		if len(args) > 1 && (args[1] == "get" || args[1] == "batch" || args[1] == "fake") {
			return a.run(ctx, []string{args[1], "-h"}) // "wxacode help batch" is "wxacode batch -h"
		}
		fallthrough
	case "-h", "-help", "--help":
		fmt.Fprint(a.stdout, usage)
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintln(a.stdout, "wxacode", version())
		return exitOK
	}
	return a.usageError("wxacode", fmt.Errorf("unknown command %q (want get, batch, fake or help)", args[0]))
}

// version is the module version the command was built from, "(devel)"
// when built from a checkout.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// usageError prints one line about bad input and returns exitUsage.
func (a *app) usageError(cmd string, err error) int {
	fmt.Fprintf(a.stderr, "%s: %s (see %s -h)\n", cmd, strings.TrimPrefix(err.Error(), "wxacode: "), cmd)
	return exitUsage
}

// isTerminal reports whether f is a character device, such as a terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
