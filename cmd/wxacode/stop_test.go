package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// scenesFile writes n scenes, one a line.
func scenesFile(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "id=%d\n", i)
	}
	return writeFile(t, "scenes.txt", b.String())
}

// TestStopsOnErrorsNoSceneCanPass: wrong credentials or a missing
// permission stop the run at once with the error and its hint on one
// line; the scenes never tried are not failures.
func TestStopsOnErrorsNoSceneCanPass(t *testing.T) {
	tests := []struct {
		name      string
		env       func(srv *wxacodetest.Server) map[string]string
		failNext  int // errcode the calls answer
		wantCode  string
		wantHint  string
		maxTokens int
	}{
		{"wrong secret", func(s *wxacodetest.Server) map[string]string {
			return map[string]string{"WECHAT_APPID": s.AppID(), "WECHAT_SECRET": "wrong-secret-0123456789"}
		}, 0, "40125", "AppSecret is wrong", 8},
		{"wrong AppID", func(s *wxacodetest.Server) map[string]string {
			return map[string]string{"WECHAT_APPID": "wx-not-mine", "WECHAT_SECRET": s.AppSecret()}
		}, 0, "40013", "", 8},
		{"no permission", func(s *wxacodetest.Server) map[string]string {
			return map[string]string{"WECHAT_APPID": s.AppID(), "WECHAT_SECRET": s.AppSecret()}
		}, 48001, "48001", "permission set", 1},
		{"no token sent", func(s *wxacodetest.Server) map[string]string {
			return map[string]string{"WECHAT_APPID": s.AppID(), "WECHAT_SECRET": s.AppSecret()}
		}, 41001, "41001", "no access_token was sent", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := wxacodetest.NewServer()
			t.Cleanup(srv.Close)
			if tc.failNext != 0 {
				srv.FailNext(1_000_000, tc.failNext)
			}
			in := writeFile(t, "in.txt", strings.Repeat("bad scene\n", 1)+strings.TrimSuffix(readAll(t, scenesFile(t, 400)), "\n"))
			out := filepath.Join(t.TempDir(), "codes")
			res := runBinary(t, tc.env(srv), "", "batch", "-base-url", srv.URL, "-in", in, "-out", out, "-concurrency", "8", "-rate", "100000/min")
			if res.code != exitFailed {
				t.Fatalf("exit %d, want 1; stderr %q", res.code, res.stderr)
			}
			var line string
			for _, l := range strings.Split(res.stderr, "\n") {
				if strings.Contains(l, "stopped") {
					line = l
				}
			}
			if !strings.Contains(line, tc.wantCode) || !strings.Contains(line, tc.wantHint) {
				t.Errorf("stderr %q; want one line with %s and its hint %q", res.stderr, tc.wantCode, tc.wantHint)
			}
			if got := srv.TokenRequests(); got > tc.maxTokens {
				t.Errorf("%d token requests, want at most %d", got, tc.maxTokens)
			}
			if got := len(srv.Requests()); got > 8 {
				t.Errorf("%d calls for 400 scenes, want at most the 8 in flight", got)
			}
			// Only the scene that failed on its own is a failure.
			fails := readFailures(t, filepath.Join(out, failuresFile))
			if len(fails) != 1 || fails["bad scene"] == ([2]string{}) {
				t.Errorf("failures.csv = %v, want only the invalid scene", fails)
			}
		})
	}
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestStopsWhenTheDirectoryStopsTakingFiles: made immutable after the first
// images (chattr +i), or a file system that is full, the directory stops
// the run: calls in flight end, no more are sent, one line names it.
func TestStopsWhenTheDirectoryStopsTakingFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (dir string, breakIt func() error)
	}{
		{"made immutable", func(t *testing.T) (string, func() error) {
			dir := filepath.Join(t.TempDir(), "codes")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
				t.Skipf("chattr +i is not possible here (%v: %s)", err, out)
			}
			_ = exec.Command("chattr", "-i", dir).Run()
			t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
			return dir, func() error { return exec.Command("chattr", "+i", dir).Run() }
		}},
		{"disk full", func(t *testing.T) (string, func() error) {
			dir := filepath.Join(t.TempDir(), "codes")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			// Room for a few 40 KB images, not for 300.
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a small tmpfs here (%v: %s)", err, out)
			}
			t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
			return dir, func() error { return nil }
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, env := fakeEnv(t, wxacodetest.WithLatency(20*time.Millisecond))
			out, breakIt := tc.setup(t)
			cmd := command(t, env, "", "batch", "-base-url", srv.URL, "-in", scenesFile(t, 300), "-out", out, "-concurrency", "4", "-rate", "100000/min")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for len(listImages(t, out)) < 2 {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("no images after 20 s: %s", stderr.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := breakIt(); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if code != exitFailed {
				t.Fatalf("exit %d (%v), want 1; stderr %q", code, err, stderr.String())
			}
			images := len(listImages(t, out))
			if calls := len(srv.Requests()); calls > images+4+2 {
				t.Errorf("%d calls for %d images saved: the run went on sending", calls, images)
			}
			var lines []string
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(l, out) && strings.Contains(l, "cannot be written") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Errorf("stderr %q; want one line naming %s and the cause", stderr.String(), out)
			}
		})
	}
}
