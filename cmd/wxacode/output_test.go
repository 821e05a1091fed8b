package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// TestGetWritesThroughWhatIsNotAFile: a FIFO, a character device and
// /dev/stdout are written in place, never replaced by a file; a symlink's
// target is replaced and the link stays a link; a directory, or a link to
// one, is refused before any call.
func TestGetWritesThroughWhatIsNotAFile(t *testing.T) {
	t.Run("FIFO", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "code.fifo")
		if err := mkfifo(fifo); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		got := make(chan []byte, 1)
		go func() {
			f, err := os.Open(fifo) // blocks until the command opens it
			if err != nil {
				got <- nil
				return
			}
			defer f.Close()
			data, _ := io.ReadAll(f)
			got <- data
		}()
		res := runBinary(t, nil, "", "get", "-fake", "-scene", "id=1", "-o", fifo)
		if res.code != exitOK {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		if scene, _ := wxacodetest.ReadScene(<-got); scene != "id=1" {
			t.Errorf("the reader of the FIFO got no code (scene %q)", scene)
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("the FIFO was replaced: %v, %v", fi.Mode(), err)
		}
	})
	t.Run("/dev/stdout", func(t *testing.T) {
		res := runBinary(t, nil, "", "get", "-fake", "-scene", "id=2", "-o", "/dev/stdout")
		if res.code != exitOK {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		if scene, _ := wxacodetest.ReadScene([]byte(res.stdout)); scene != "id=2" {
			t.Errorf("standard output holds no code (scene %q, %d bytes)", scene, len(res.stdout))
		}
		if fi, err := os.Lstat("/dev/stdout"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("/dev/stdout is no longer a link: %v, %v", fi.Mode(), err)
		}
	})
	t.Run("character devices", func(t *testing.T) {
		dir := t.TempDir()
		null, full := filepath.Join(dir, "null"), filepath.Join(dir, "full")
		// Devices of our own (as /dev/null and /dev/full), so that a
		// command that replaced them would break nothing of the machine's.
		if err := mkchar(null, 1, 3); err != nil {
			t.Skipf("mknod needs root: %v", err)
		}
		if err := mkchar(full, 1, 7); err != nil {
			t.Skipf("mknod: %v", err)
		}
		if res := runBinary(t, nil, "", "get", "-fake", "-scene", "id=3", "-o", null); res.code != exitOK {
			t.Errorf("-o a null device: exit %d, stderr %q", res.code, res.stderr)
		}
		res := runBinary(t, nil, "", "get", "-fake", "-scene", "id=3", "-o", full)
		if res.code != exitFailed || !strings.Contains(res.stderr, "no space left") {
			t.Errorf("-o a full device: exit %d, stderr %q; want 1 and the device's error", res.code, res.stderr)
		}
		for _, dev := range []string{null, full} {
			if fi, err := os.Lstat(dev); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
				t.Errorf("%s was replaced: %v, %v", dev, fi.Mode(), err)
			}
		}
	})
	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		targetDir := t.TempDir()
		target := filepath.Join(targetDir, "real.jpg")
		if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "code.jpg")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		dangling := filepath.Join(dir, "new.jpg")
		if err := os.Symlink("../"+filepath.Base(targetDir)+"/made.jpg", dangling); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ link, target string }{{link, target}, {dangling, filepath.Join(targetDir, "made.jpg")}} {
			if res := runBinary(t, nil, "", "get", "-fake", "-scene", "id=4", "-o", tc.link); res.code != exitOK {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if fi, err := os.Lstat(tc.link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s is no longer a link", tc.link)
			}
			data, _ := os.ReadFile(tc.target)
			if scene, _ := wxacodetest.ReadScene(data); scene != "id=4" {
				t.Errorf("the link's target %s holds no code", tc.target)
			}
		}
		if names := dirNames(t, targetDir); len(names) != 2 {
			t.Errorf("the target's directory holds %v, want the two images only", names)
		}
	})
	t.Run("directory", func(t *testing.T) {
		srv, env := fakeEnv(t)
		dir := t.TempDir()
		link := filepath.Join(t.TempDir(), "to-dir")
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		for _, out := range []string{dir, link} {
			res := runBinary(t, env, "", "get", "-base-url", srv.URL, "-scene", "id=5", "-o", out)
			if res.code != exitUsage || !strings.Contains(res.stderr, "directory") {
				t.Errorf("-o %s: exit %d, stderr %q; want 2", out, res.code, res.stderr)
			}
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("%d calls made", n)
		}
		if len(dirNames(t, dir)) != 0 {
			t.Errorf("the directory got files: %v", dirNames(t, dir))
		}
	})
}

// TestGetAppendsThroughStdout: "wxacode get -o /dev/stdout >> f" appends
// the code to f, as any command writing to standard output would; it
// never replaces f with a file of its own.
func TestGetAppendsThroughStdout(t *testing.T) {
	if _, err := os.Lstat("/dev/stdout"); err != nil {
		t.Skip("no /dev/stdout here")
	}
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("previous\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0) // as ">>" opens it
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := command(t, nil, "", "get", "-fake", "-scene", "a=1", "-o", "/dev/stdout")
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, ok := strings.CutPrefix(string(data), "previous\n")
	if !ok {
		t.Fatalf("the file starts %q: what it held is gone", data[:min(len(data), 16)])
	}
	if c, err := wxacodetest.ReadCode([]byte(img)); err != nil || c.Scene != "a=1" {
		t.Errorf("after what it held: %v, %+v; want the code of a=1", err, c)
	}
}
