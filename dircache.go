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

	"github.com/go-wxacode/wxacode/internal/atomicfile"
	"github.com/go-wxacode/wxacode/internal/imagecheck"
)

// DirCache is a Cache of files in a directory, one per code, named by its
// key: codes survive restarts, and several processes may share the
// directory. A file is written under a temporary name, synced and renamed,
// so a crash never leaves a partial file under a key; a file that is not a
// complete image is a miss (and is replaced by the next Put). Files get
// the permissions os.WriteFile(name, data, 0o644) gives, so a web server
// sharing the directory can serve them.
type DirCache struct {
	dir string
}

// staleTempAge is how old a temporary file must be to be taken for one a
// crashed writer left: other processes may be writing to the directory.
const staleTempAge = time.Hour

// NewDirCache keeps codes as files in dir (created if missing), surviving
// restarts. It removes temporary files that crashed writers left (those an
// hour old).
func NewDirCache(dir string) (*DirCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wxacode: cache directory: %w", err)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("wxacode: cache directory: %w", err)
	}
	atomicfile.RemoveTemps(dir, staleTempAge)
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
	if imagecheck.Check(img) != "" {
		return nil, false, nil
	}
	return img, true, nil
}

// Put writes img under key: to a temporary file, synced, then renamed. When
// the directory was removed while the cache was in use (a temp cleaner, a
// redeploy), Put makes it again rather than miss on every call from then
// on.
func (d *DirCache) Put(_ context.Context, key string, img []byte) error {
	if _, err := d.path(key); err != nil {
		return err
	}
	err := atomicfile.Write(d.dir, key, img)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(d.dir, 0o755); err == nil {
			err = atomicfile.Write(d.dir, key, img)
		}
	}
	if err != nil {
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
