package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The command as a user runs it: built once per test binary, run as a
// process with an environment of its own.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary returns the path of the built command.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "wxacode-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "wxacode")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + ": " + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// command returns the built command with args, env as its only
// environment and stdin as its input.
func command(t *testing.T, env map[string]string, stdin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// runBinary runs the built command to its end.
func runBinary(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	cmd := command(t, env, stdin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestTransparentFormatFromBytes: the fake, as the service, sends a
// transparent code's PNG under Content-Type image/jpeg; the command names
// and checks it by its bytes.
func TestTransparentFormatFromBytes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "scenes.txt")
	if err := os.WriteFile(in, []byte("id=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "codes")
	r := runBinary(t, nil, "", "batch", "-fake", "-transparent", "-in", in, "-out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	pngs, _ := filepath.Glob(filepath.Join(out, "*.png"))
	jpgs, _ := filepath.Glob(filepath.Join(out, "*.jpg"))
	if len(pngs) != 1 || len(jpgs) != 0 {
		t.Fatalf("files %v %v, want one .png", pngs, jpgs)
	}
	b, err := os.ReadFile(pngs[0])
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("%s is not a PNG (%v)", pngs[0], err)
	}
}
