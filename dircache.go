package wxacode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DirCache is a Cache of files in a directory, one per code, named by its
// key: codes survive restarts, and several processes may share the
// directory. A file is written under a temporary name, synced and renamed,
// so a crash never leaves a partial file under a key; a file that is not a
// complete image is a miss (and is replaced by the next Put).
type DirCache struct {
	dir string
}

// dirCacheTemp prefixes the temporary files of writes in progress.
const dirCacheTemp = ".tmp-"

// staleTempAge is how old a temporary file must be to be taken for one a
// crashed writer left.
const staleTempAge = time.Hour

// NewDirCache keeps codes as files in dir (created if missing), surviving
// restarts. It removes temporary files that crashed writers left (those an
// hour old).
func NewDirCache(dir string) (*DirCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wxacode: cache directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wxacode: cache directory: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), dirCacheTemp) && time.Since(info.ModTime()) > staleTempAge {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &DirCache{dir: dir}, nil
}

// Get returns the image stored under key. A missing file, or one that is
// not a complete image, is a miss.
func (d *DirCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	path, err := d.path(key)
	if err != nil {
		return nil, false, err
	}
	img, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("wxacode: cache: %w", err)
	}
	if checkImage(img) != "" {
		return nil, false, nil
	}
	return img, true, nil
}

// Put writes img under key: to a temporary file, synced, then renamed.
func (d *DirCache) Put(_ context.Context, key string, img []byte) error {
	path, err := d.path(key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(d.dir, dirCacheTemp+"*")
	if err != nil {
		return fmt.Errorf("wxacode: cache: %w", err)
	}
	_, err = f.Write(img)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("wxacode: cache: %w", err)
	}
	return nil
}

// path returns the file of key, which must be what Request.Key makes:
// 1 to 64 characters of [0-9a-f], so that no key names a path outside the
// directory.
func (d *DirCache) path(key string) (string, error) {
	if len(key) == 0 || len(key) > 64 || strings.Trim(key, "0123456789abcdef") != "" {
		return "", fmt.Errorf("wxacode: cache key %q is not 1 to 64 characters of [0-9a-f]", key)
	}
	return filepath.Join(d.dir, key), nil
}
