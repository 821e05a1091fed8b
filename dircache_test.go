package wxacode

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestDirCacheSurvivesARestart: a new Client on the same directory serves
// the code without a call; the directory holds one file per code.
func TestDirCacheSurvivesARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "codes")
	srv := newFake(t)
	newClient := func() *Client {
		d, err := NewDirCache(dir)
		if err != nil {
			t.Fatal(err)
		}
		return NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(d))
	}
	reqs := []Request{{Scene: "a=1"}, {Scene: "a=2", IsHyaline: true}}
	var minted [][]byte
	for _, r := range reqs {
		img, err := newClient().GetUnlimited(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		minted = append(minted, img)
	}
	calls := len(srv.Requests())
	restarted := newClient()
	for i, r := range reqs {
		img, err := restarted.GetUnlimited(context.Background(), r)
		if err != nil || !bytes.Equal(img, minted[i]) {
			t.Errorf("%+v after a restart: %v, same bytes %v", r, err, bytes.Equal(img, minted[i]))
		}
	}
	if got := len(srv.Requests()); got != calls {
		t.Errorf("%d API calls after the restart, want 0", got-calls)
	}
	names := dirNames(t, dir)
	if len(names) != 2 || names[0] != min(reqs[0].Key(), reqs[1].Key()) || names[1] != max(reqs[0].Key(), reqs[1].Key()) {
		t.Errorf("directory holds %v, want the two keys and nothing else", names)
	}
}

func TestDirCacheFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := NewDirCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	jpg := testJPEG(t)
	key := Request{Scene: "x"}.Key()

	// A file cut short (a writer that did not rename) is a miss, and Put
	// replaces it.
	if err := os.WriteFile(filepath.Join(dir, key), jpg[:len(jpg)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.Get(ctx, key); ok || err != nil {
		t.Errorf("truncated file: ok %v, err %v; want a miss", ok, err)
	}
	if err := d.Put(ctx, key, jpg); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := d.Get(ctx, key); !ok || !bytes.Equal(got, jpg) {
		t.Error("Put did not replace the truncated file")
	}
	for _, junk := range [][]byte{[]byte("<html>"), nil} {
		_ = os.WriteFile(filepath.Join(dir, key), junk, 0o644)
		if _, ok, _ := d.Get(ctx, key); ok {
			t.Errorf("%q served as an image", junk)
		}
	}

	// Keys are validated: none names a path outside dir.
	for _, bad := range []string{"", "../escape", "a/b", "ABC", "..", string(make([]byte, 65))} {
		if _, _, err := d.Get(ctx, bad); err == nil {
			t.Errorf("Get(%q) accepted the key", bad)
		}
		if err := d.Put(ctx, bad, jpg); err == nil {
			t.Errorf("Put(%q) accepted the key", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); !os.IsNotExist(err) {
		t.Error("a file was written outside the directory")
	}

	// Writes leave nothing but the file; a crashed writer's old temporary
	// file is removed when the cache is opened again, a fresh one is not.
	if names := dirNames(t, dir); len(names) != 1 || names[0] != key {
		t.Errorf("directory holds %v, want only %s", names, key)
	}
	old, fresh := filepath.Join(dir, ".wxacode-1.tmp"), filepath.Join(dir, ".wxacode-2.tmp")
	_ = os.WriteFile(old, jpg[:10], 0o644)
	_ = os.WriteFile(fresh, jpg[:10], 0o644)
	_ = os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	if _, err := NewDirCache(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("a crashed writer's temporary file was kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a fresh temporary file was removed")
	}
}

// TestDirCacheFilesAreShareable: a stored code has the permissions
// os.WriteFile(name, data, 0o644) gives (whatever the umask), so a web
// server reading the directory can serve it.
func TestDirCacheFilesAreShareable(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDirCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := Request{Scene: "x"}.Key()
	if err := d.Put(context.Background(), key, testJPEG(t)); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if err := os.WriteFile(ref, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := os.Stat(ref)
	got, err := os.Stat(filepath.Join(dir, key))
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode().Perm() != want.Mode().Perm() {
		t.Errorf("mode = %v, want %v (as os.WriteFile with 0o644)", got.Mode().Perm(), want.Mode().Perm())
	}
}

// TestDirCacheDirectoryRemovedWhileRunning: when a temp cleaner or a
// redeploy removes the directory, the next Put makes it again, and the
// code is served from it after that.
func TestDirCacheDirectoryRemovedWhileRunning(t *testing.T) {
	srv := newFake(t)
	dir := filepath.Join(t.TempDir(), "codes")
	d, err := NewDirCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(StaticToken(srv.Token()), WithBaseURL(srv.URL), WithCache(d))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r := Request{Scene: "id=1"}
	for range 3 {
		if _, err := c.GetUnlimited(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(srv.Requests()); got != 1 {
		t.Errorf("API calls = %d, want 1: the code was not stored after the directory went", got)
	}
	if _, err := os.Stat(filepath.Join(dir, r.Key())); err != nil {
		t.Errorf("the code is not in the directory made again: %v", err)
	}
}

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

// TestDirCacheAcrossProcesses: a second process, with its own Client on the
// same directory, serves the code without an API call.
func TestDirCacheAcrossProcesses(t *testing.T) {
	if os.Getenv("WXACODE_CACHE_CHILD") != "" {
		t.Skip("the child process runs TestDirCacheChild")
	}
	dir := t.TempDir()
	srv := newFake(t)
	child := func() []byte {
		t.Helper()
		out := filepath.Join(t.TempDir(), "img")
		cmd := exec.Command(os.Args[0], "-test.run=^TestDirCacheChild$")
		cmd.Env = append(os.Environ(), "WXACODE_CACHE_CHILD=1", "WXACODE_CACHE_DIR="+dir, "WXACODE_CACHE_URL="+srv.URL,
			"WXACODE_CACHE_TOKEN="+srv.Token(), "WXACODE_CACHE_OUT="+out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v: %s", err, msg)
		}
		img, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	first := child()
	calls := len(srv.Requests())
	second := child()
	if calls != 1 || len(srv.Requests()) != 1 {
		t.Errorf("API calls: %d after the first process, %d after the second; want 1 and 1", calls, len(srv.Requests()))
	}
	if len(first) == 0 || !bytes.Equal(first, second) {
		t.Error("the second process did not get the first one's code")
	}
}

// TestDirCacheChild is the child process of TestDirCacheAcrossProcesses.
func TestDirCacheChild(t *testing.T) {
	if os.Getenv("WXACODE_CACHE_CHILD") == "" {
		t.Skip("run by TestDirCacheAcrossProcesses")
	}
	d, err := NewDirCache(os.Getenv("WXACODE_CACHE_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(StaticToken(os.Getenv("WXACODE_CACHE_TOKEN")), WithBaseURL(os.Getenv("WXACODE_CACHE_URL")), WithCache(d))
	img, err := c.GetUnlimited(context.Background(), Request{Scene: "across"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("WXACODE_CACHE_OUT"), img, 0o644); err != nil {
		t.Fatal(err)
	}
}
