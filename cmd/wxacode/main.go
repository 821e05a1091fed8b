// Command wxacode mints WeChat mini program codes with getUnlimitedQRCode:
// one with "wxacode get", or thousands with "wxacode batch", which is
// resumable and stays within the API's rate limit.
//
// Credentials come from the environment, never from flags (flags show in
// ps): WECHAT_APPID and WECHAT_SECRET (tokens from stable_token), or
// WECHAT_ACCESS_TOKEN. With -fake the command runs against an embedded
// wxacodetest server and needs no credentials:
//
//	go run ./cmd/wxacode get -fake -scene 'id=42' -o code.jpg
//
// Exit codes: 0 success; 1 a code could not be minted, or the quota ran out;
// 2 bad flags, input or output directory (checked before any call), or an
// output directory another batch holds; 130 interrupted (run the same batch
// again to finish). The manual is README.md beside this file, and -h.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		terminal: isTerminal(os.Stderr),
	}
	code := a.run(ctx, os.Args[1:])
	stop()
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

Code flags (both commands):
  -page P             page to open, e.g. pages/item/index (default: home page)
  -width N            280 to 1280 pixels (default 430)
  -env V              release, trial or develop (default release)
  -skip-path-check    allow a page not in the published release (check_path=false)
  -color RRGGBB       line colour, e.g. 07C160 (default black)
  -auto-color         let WeChat pick the line colour
  -transparent        transparent background (the service then answers PNG)
  -fake               run against an embedded fake of the WeChat API (no credentials)
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

Run "wxacode get -h" or "wxacode batch -h" for details.
`

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
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, usage)
		return exitOK
	}
	return a.usageError("wxacode", fmt.Errorf("unknown command %q (want get or batch)", args[0]))
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
