// Package atomicfile writes files so that their final name only ever holds
// the whole content, for DirCache and the command's images alike, and
// sweeps the temporary files a killed writer left.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Temporary files are named Prefix…Suffix in the directory of the final
// name, and renamed to it once complete.
const (
	Prefix = ".wxacode-"
	Suffix = ".tmp"
)

// Perm is the mode files are created with, before the umask: what
// os.WriteFile(name, data, 0o644) gives, so a web server sharing the
// directory can serve them.
const Perm fs.FileMode = 0o644

// CreateTemp creates a new temporary file in dir, named Prefix…Suffix,
// with Perm less the umask (os.CreateTemp would make it 0600).
func CreateTemp(dir string) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, Prefix+strconv.FormatUint(rand.Uint64(), 36)+Suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, Perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, Prefix+"*"+Suffix), Err: fs.ErrExist}
}

// Write writes data to dir/name through a temporary file in dir that is
// synced and renamed: the name holds the whole data or what it held
// before. On error the temporary file is removed.
func Write(dir, name string, data []byte) error {
	f, err := CreateTemp(dir)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// IsTemp reports whether name (a base name) is one of this package's
// temporary files.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, Prefix) && strings.HasSuffix(name, Suffix)
}

// RemoveTemps deletes, in dir itself (read as a name, never a pattern),
// the temporary files that were last changed more than olderThan ago; 0
// removes them all, for a caller that knows no live writer shares dir. It
// returns how many it removed.
func RemoveTemps(dir string, olderThan time.Duration) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !IsTemp(e.Name()) {
			continue
		}
		if olderThan > 0 {
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) <= olderThan {
				continue
			}
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n
}

// CheckDir makes sure dir exists (creating it, and its parents, if create
// is set) and takes files: it creates a temporary file there and removes
// it. Errors name dir.
func CheckDir(dir string, create bool) error {
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("output directory: %w", err)
		}
	}
	f, err := CreateTemp(dir)
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}
