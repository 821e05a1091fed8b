//go:build unix

package batch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes dir for this run with flock(2) on dir/.wxacode.lock. The
// kernel releases the lock when the process dies, so a killed run never
// blocks the next one. The returned function releases it and removes the
// file.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, LockFile)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("output directory %s: %w", dir, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("output directory %s %w", dir, errLocked)
			}
			return nil, fmt.Errorf("output directory %s: lock: %w", dir, err)
		}
		// The run before may have removed the file between our open and
		// our lock: then we hold a lock on a name nobody sees; try again.
		held, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return func() {
				_ = os.Remove(path)
				_ = f.Close()
			}, nil
		}
		_ = f.Close()
	}
}
