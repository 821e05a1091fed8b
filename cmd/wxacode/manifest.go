package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-wxacode/wxacode/internal/atomicfile"
)

// manifestFile records, in the output directory, which request each image
// was minted for: one line "KEY NAME" per image written, KEY being
// wxacode.Request.Key(). A later line for a name replaces an earlier one.
// Lines are appended as images are written (after the image is renamed
// into place), so a run killed at any moment leaves at worst a torn last
// line, which is ignored, or an image without its line, which a rerun
// trusts as an image of an older version; the file is rewritten whole
// (atomically) when it holds many more lines than names.
const manifestFile = ".wxacode.manifest"

// requestKey is a wxacode.Request.Key() decoded: 16 bytes a row, not 32.
type requestKey [16]byte

func parseKey(s string) (requestKey, bool) {
	var k requestKey
	if len(s) != 2*len(k) {
		return k, false
	}
	_, err := hex.Decode(k[:], []byte(s))
	return k, err == nil
}

// manifest is the records of one output directory, held by one run.
type manifest struct {
	dir   string
	lines int // lines in the file, for compaction

	mu   sync.Mutex
	recs map[string]requestKey // file name -> the request it was minted for
	f    *os.File              // open for appending once a record is written
}

// loadManifest reads dir's manifest; a missing one is empty.
func loadManifest(dir string) (*manifest, error) {
	m := &manifest{dir: dir, recs: map[string]requestKey{}}
	f, err := os.Open(filepath.Join(dir, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", dir, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	for sc.Scan() {
		m.lines++
		keyText, name, ok := strings.Cut(sc.Text(), " ")
		key, valid := parseKey(keyText)
		if ok && valid && name != "" {
			m.recs[name] = key
		}
	}
	// A torn or over-long last line is ignored: its image is then
	// trusted or minted again, never taken for another request's.
	_ = sc.Err()
	return m, nil
}

// lookup returns the request name was minted for, if recorded.
func (m *manifest) lookup(name string) (requestKey, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.recs[name]
	return k, ok
}

// compact rewrites the file with one line per name when it holds more
// than twice as many lines (and some thousands): reruns with -force or
// with other flags would grow it without bound.
func (m *manifest) compact() error {
	if m.lines <= 2*len(m.recs)+4096 {
		return nil
	}
	var b bytes.Buffer
	for name, key := range m.recs {
		fmt.Fprintf(&b, "%x %s\n", key[:], name)
	}
	if err := atomicfile.Write(m.dir, manifestFile, b.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, manifestFile), err)
	}
	m.lines = len(m.recs)
	return nil
}

// record notes that name now holds the code of key.
func (m *manifest) record(name string, key requestKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		f, err := os.OpenFile(filepath.Join(m.dir, manifestFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, atomicfile.Perm)
		if err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(m.dir, manifestFile), err)
		}
		m.f = f
	}
	line := fmt.Sprintf("%x %s\n", key[:], name)
	if _, err := m.f.WriteString(line); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, manifestFile), err)
	}
	m.recs[name] = key
	m.lines++
	return nil
}

// close closes the file, reporting a failed write-back.
func (m *manifest) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, manifestFile), err)
	}
	return nil
}
