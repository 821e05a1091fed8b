package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, "a", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, "a", []byte("two")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "a"))
	if err != nil || string(got) != "two" {
		t.Errorf("a = %q, %v; want two", got, err)
	}
	if n := names(t, dir); !slices.Equal(n, []string{"a"}) {
		t.Errorf("directory holds %v, want only a", n)
	}
	// A directory that is gone: an error, and nothing left behind.
	if err := Write(filepath.Join(dir, "gone"), "a", nil); !os.IsNotExist(err) {
		t.Errorf("Write into a missing directory: %v, want not-exist", err)
	}
	// Into a name that is a directory: an error, and the temporary file goes.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, "d", []byte("x")); err == nil {
		t.Error("Write replaced a directory")
	}
	if n := names(t, dir); !slices.Equal(n, []string{"a", "d"}) {
		t.Errorf("after a failed write the directory holds %v", n)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{Prefix + "old" + Suffix, Prefix + "new" + Suffix, "keep.jpg", Prefix + "x.jpg"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Hour)
	_ = os.Chtimes(filepath.Join(dir, Prefix+"old"+Suffix), long, long)
	if got := RemoveTemps(dir, time.Hour); got != 1 {
		t.Errorf("removed %d older than an hour, want 1", got)
	}
	if got := RemoveTemps(dir, 0); got != 1 {
		t.Errorf("removed %d with no age, want 1", got)
	}
	if n := names(t, dir); !slices.Equal(n, []string{Prefix + "x.jpg", "keep.jpg"}) {
		t.Errorf("left %v", n)
	}
}
