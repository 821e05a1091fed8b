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

// manifest is the records of one output directory, held by one run. Its
// names are kept as digests: 32 bytes a record whatever the name.
type manifest struct {
	dir string

	mu   sync.Mutex
	recs map[digest]requestKey // digest of a file name -> the request it was minted for
	f    *os.File              // open for appending once a record is written
}

// loadManifest reads dir's manifest (a missing one is empty), first
// rewriting it with one line a name when it holds many more lines than
// names: reruns with -force or other flags would grow it without bound.
func loadManifest(dir string) (*manifest, error) {
	m := &manifest{dir: dir, recs: map[digest]requestKey{}}
	lines, err := m.scan(func(name string, key requestKey) { m.recs[digestOf(name)] = key })
	if err != nil {
		return nil, err
	}
	if lines > 2*len(m.recs)+4096 {
		if err := m.compact(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// scan calls each for every well-formed line of the file, in order, and
// returns how many lines it read. A torn or over-long last line is
// ignored: its image is then trusted or minted again, never taken for
// another request's.
func (m *manifest) scan(each func(name string, key requestKey)) (int, error) {
	f, err := os.Open(filepath.Join(m.dir, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("output directory %s: %w", m.dir, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	lines := 0
	for sc.Scan() {
		lines++
		keyText, name, ok := strings.Cut(sc.Text(), " ")
		if key, valid := parseKey(keyText); ok && valid && name != "" {
			each(name, key)
		}
	}
	return lines, nil
}

// lookup returns the request name was minted for, if recorded before
// this run.
func (m *manifest) lookup(name string) (requestKey, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.recs[digestOf(name)]
	return k, ok
}

// compact rewrites the file with the last line of each name, in the order
// the names first came.
func (m *manifest) compact() error {
	last := map[string]requestKey{}
	var order []string
	if _, err := m.scan(func(name string, key requestKey) {
		if _, ok := last[name]; !ok {
			order = append(order, name)
		}
		last[name] = key
	}); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, name := range order {
		key := last[name]
		fmt.Fprintf(&b, "%x %s\n", key[:], name)
	}
	if err := atomicfile.Write(m.dir, manifestFile, b.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, manifestFile), err)
	}
	return nil
}

// record notes, in the file, that name now holds the code of key (the
// planning that reads recs is over by then).
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
