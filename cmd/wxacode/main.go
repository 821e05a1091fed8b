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
//
// This package parses flags and prints; the batch engine (plan, manifest,
// workers, quota pauses) is internal/batch, behind batch.Run.
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
		setMemoryLimit: func(n int64) {
			if os.Getenv("GOMEMLIMIT") == "" { // the user's limit wins
				debug.SetMemoryLimit(n)
			}
		},
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

	// setMemoryLimit sets the process's soft memory limit for a batch
	// (batch.Config.SetMemoryLimit); nil leaves it alone, as in tests
	// that run the command in-process.
	setMemoryLimit func(bytes int64)
}

// subcommand is one of wxacode's commands: the one table that usage, help
// and dispatch read.
type subcommand struct {
	name string
	args string // its usage line, after the name
	run  func(a *app, ctx context.Context, args []string) int
}

// commands lists wxacode's commands in the order usage shows them.
func commands() []subcommand {
	return []subcommand{
		{"get", "-scene S -o FILE [code flags]", (*app).get},
		{"batch", "-in FILE -out DIR [-concurrency N] [-rate N/min] [-force] [code flags]", (*app).batch},
		{"fake", "[-addr 127.0.0.1:8080] [-quota N] [-v] …   the fake API as a server, for tests", (*app).fake},
	}
}

// usage is the text of "wxacode -h".
func usage() string {
	var lines, helps []string
	for _, c := range commands() {
		lines = append(lines, fmt.Sprintf("  wxacode %-5s %s\n", c.name, c.args))
		helps = append(helps, fmt.Sprintf("%q", "wxacode help "+c.name))
	}
	return `wxacode mints WeChat mini program codes (getUnlimitedQRCode).

Usage:
` + strings.Join(lines, "") + `
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

Run ` + orList(helps) + ` for details, "wxacode -version"
for the version.

` + exitCodesHelp
}

// orList joins items as "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// run dispatches to a command and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage())
		return exitUsage
	}
	var names []string
	for _, c := range commands() {
		if args[0] == c.name {
			return c.run(a, ctx, args[1:])
		}
		if args[0] == "help" && len(args) > 1 && args[1] == c.name {
			return c.run(a, ctx, []string{"-h"}) // "wxacode help batch" is "wxacode batch -h"
		}
		names = append(names, c.name)
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(a.stdout, usage())
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintln(a.stdout, "wxacode", version())
		return exitOK
	}
	return a.usageError("wxacode", fmt.Errorf("unknown command %q (want %s)", args[0], orList(append(names, "help"))))
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
