package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// TestSignalsEndARunAsCtrlCDoes: SIGINT, SIGTERM and SIGHUP cancel the
// requests in flight, leave no temporary file and no lock, and exit with
// 128 + the signal.
func TestSignalsEndARunAsCtrlCDoes(t *testing.T) {
	slow := wxacodetest.NewServer(wxacodetest.WithLatency(time.Minute))
	t.Cleanup(slow.Close)
	// A token of the fake's own: the calls themselves are what is slow.
	env := map[string]string{"WECHAT_ACCESS_TOKEN": slow.Token()}
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "codes")
			cmd := command(t, env, "", "batch", "-base-url", slow.URL, "-in", scenesFile(t, 20), "-out", out, "-concurrency", "4")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			conns := slow.Conns()
			deadline := time.Now().Add(20 * time.Second)
			for slow.Conns() < conns+4 { // the 4 workers' requests are in flight
				if time.Now().After(deadline) {
					t.Fatal("the run never called the API")
				}
				time.Sleep(10 * time.Millisecond)
			}
			start := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if got := cmd.ProcessState.ExitCode(); got != tc.want {
				t.Errorf("exit %d, want %d; stderr %q", got, tc.want, stderr.String())
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to end after the signal: the requests in flight were not cancelled", d)
			}
			if !strings.Contains(stderr.String(), "interrupted with 20 left") {
				t.Errorf("stderr %q, want the interrupted summary", stderr.String())
			}
			for _, name := range dirNames(t, out) {
				if strings.HasPrefix(name, ".wxacode-") || name == lockFile {
					t.Errorf("%s left in the directory", name)
				}
			}
		})
	}
}

// TestInputNeverHeldWhole: an input that is one endless line (/dev/zero)
// is read in bounded memory.
func TestInputNeverHeldWhole(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc here to read the memory of a process")
	}
	srv, env := fakeEnv(t)
	cmd := command(t, env, "", "batch", "-base-url", srv.URL, "-in", "/dev/zero", "-out", filepath.Join(t.TempDir(), "codes"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	peak := 0
	for range 20 { // 2 s of reading
		time.Sleep(100 * time.Millisecond)
		status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.Atoi(f[1])
				peak = max(peak, kb)
			}
		}
	}
	if peak == 0 || peak > 64<<10 {
		t.Errorf("peak RSS %d KiB reading /dev/zero for 2 s, want under 64 MiB", peak)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}
