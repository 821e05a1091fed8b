package batch

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-wxacode/wxacode/internal/atomicfile"
)

// ManifestFile records, in the output directory, what made each image:
// one line a write,
//
//	w2 CRC KEY ORIGIN SCENE NAME
//
// KEY being wxacode.Request.Key() (scene, page and every code flag),
// ORIGIN a hash of the API and the account (-fake, or the base URL and
// the AppID), SCENE a hash of the scene, and CRC a CRC-32 of the rest of
// the line, so that a line cut short or run into another is never read
// as a record. "w2 CRC - - - NAME" says that NAME is being replaced: it
// is written (and synced) before a new image is renamed over one that has
// a record, and the new image's record follows the rename. A later line
// for a name replaces an earlier one. An image counts as done only with a
// record of this request from this origin; an image without one (the run
// was killed between the rename and the record, the manifest is gone, an
// older version's manifest) is minted again, never trusted. The file is
// rewritten whole (atomically) when it holds many more lines than names.
const ManifestFile = ".wxacode.manifest"

// maxManifestLine bounds a line: a record is under 300 bytes. A longer one
// means the file is not ours, and the run stops rather than guess.
const maxManifestLine = 4096

// requestKey is a wxacode.Request.Key() decoded: 16 bytes a row, not 32.
type requestKey [16]byte

func parseKey(s string) (requestKey, bool) {
	var k requestKey
	return k, decodeHex(k[:], s)
}

// decodeHex fills dst from s, exactly 2*len(dst) hex digits.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// short is a 64-bit hash, enough to tell two origins or two scenes apart
// in one directory's records.
type short [8]byte

func shortOf(s string) short {
	sum := sha256.Sum256([]byte(s))
	return short(sum[:8])
}

// record is what the manifest says made an image.
type record struct {
	key    requestKey
	origin short // API and account
	scene  short
}

// manifest is the records of one output directory, held by one run. Its
// names are kept as digests: 48 bytes a record whatever the name.
type manifest struct {
	dir string

	mu      sync.Mutex
	recs    map[digest]record // digest of a file name -> what made its image
	f       *os.File          // open for appending once a line is written
	newline bool              // the file ends in a torn line: end it first
}

// manifestError says that dir's manifest cannot be read, and what to do.
func manifestError(dir string, why string) error {
	return fmt.Errorf("%s cannot be read as a manifest (%s); move it away to mint every image in %s again", filepath.Join(dir, ManifestFile), why, dir)
}

// loadManifest reads dir's manifest (a missing one is empty), first
// rewriting it with one line a name when it holds many more lines than
// names: reruns with -force or other flags would grow it without bound.
// A manifest that cannot be read (not a regular file, a line over 4 KiB,
// a read error) is an error: without it no image could be vouched for.
func loadManifest(dir string) (*manifest, error) {
	m := &manifest{dir: dir, recs: map[digest]record{}}
	lines, err := m.scan(func(name string, rec record, ok bool) {
		if ok {
			m.recs[digestOf(name)] = rec
		} else {
			delete(m.recs, digestOf(name))
		}
	})
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

// openManifest opens dir's manifest for reading, or returns nil for a
// missing one. Anything but a regular file (a directory, a FIFO that would
// block, a link to a device) is refused before it is opened.
func openManifest(dir string) (*os.File, error) {
	path := filepath.Join(dir, ManifestFile)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, manifestError(dir, unwrapPath(err).Error())
	}
	if !fi.Mode().IsRegular() {
		return nil, manifestError(dir, "it is not a regular file but "+describeMode(fi.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, manifestError(dir, unwrapPath(err).Error())
	}
	return f, nil
}

// describeMode names a file type for an error message.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// scan calls each for every line of the file, in order: a record (ok), or
// a name being replaced (!ok). Lines that are not well formed (a torn last
// line, a line run into by the next, an older version's) are skipped:
// their images then have no record and are minted again. It returns how
// many lines it read.
func (m *manifest) scan(each func(name string, rec record, ok bool)) (int, error) {
	f, err := openManifest(m.dir)
	if f == nil || err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, maxManifestLine)
	lines := 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return lines, manifestError(m.dir, fmt.Sprintf("line %d is over %d bytes", lines+1, maxManifestLine))
		}
		if len(line) > 0 {
			lines++
			m.newline = line[len(line)-1] != '\n'
			if name, rec, ok, valid := parseRecord(string(bytes.TrimSuffix(line, []byte("\n")))); valid {
				each(name, rec, ok)
			}
		}
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return lines, manifestError(m.dir, err.Error())
		}
	}
}

// formatRecord returns the line for name: a record, or with rec nil the
// mark of a name being replaced.
func formatRecord(name string, rec *record) string {
	body := "- - - " + name
	if rec != nil {
		body = fmt.Sprintf("%x %x %x %s", rec.key[:], rec.origin[:], rec.scene[:], name)
	}
	return fmt.Sprintf("w2 %08x %s\n", crc32.ChecksumIEEE([]byte(body)), body)
}

// parseRecord reads a line of formatRecord's (without its newline).
func parseRecord(line string) (name string, rec record, ok, valid bool) {
	rest, found := strings.CutPrefix(line, "w2 ")
	if !found || len(rest) < 9 || rest[8] != ' ' {
		return "", rec, false, false
	}
	body := rest[9:]
	if fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))) != rest[:8] {
		return "", rec, false, false
	}
	f := strings.SplitN(body, " ", 4)
	if len(f) != 4 || f[3] == "" {
		return "", rec, false, false
	}
	if f[0] == "-" && f[1] == "-" && f[2] == "-" {
		return f[3], rec, false, true
	}
	key, kok := parseKey(f[0])
	origin, ook := parseShort(f[1])
	scene, sok := parseShort(f[2])
	if !kok || !ook || !sok {
		return "", rec, false, false
	}
	return f[3], record{key: key, origin: origin, scene: scene}, true, true
}

func parseShort(s string) (short, bool) {
	var v short
	return v, decodeHex(v[:], s)
}

// lookup returns what made the image under name, if recorded before this
// run.
func (m *manifest) lookup(name string) (record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[digestOf(name)]
	return rec, ok
}

// compact rewrites the file with the last record of each name, in the
// order the names first came.
func (m *manifest) compact() error {
	last := map[string]*record{}
	var order []string
	if _, err := m.scan(func(name string, rec record, ok bool) {
		if _, seen := last[name]; !seen {
			order = append(order, name)
		}
		last[name] = nil
		if ok {
			last[name] = &rec
		}
	}); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, name := range order {
		if rec := last[name]; rec != nil {
			b.WriteString(formatRecord(name, rec))
		}
	}
	if err := atomicfile.Write(m.dir, ManifestFile, b.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, ManifestFile), err)
	}
	m.newline = false
	return nil
}

// appendLocked appends line, opening the file first if need be (and
// ending a torn last line, so that it cannot swallow this one).
func (m *manifest) appendLocked(line string) error {
	if m.f == nil {
		f, err := os.OpenFile(filepath.Join(m.dir, ManifestFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, atomicfile.Perm)
		if err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(m.dir, ManifestFile), err)
		}
		m.f = f
	}
	if m.newline {
		line = "\n" + line
	}
	if _, err := m.f.WriteString(line); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, ManifestFile), err)
	}
	m.newline = false
	return nil
}

// replacing notes, before a new image is renamed over name, that the
// record name had no longer holds; it is synced, so that no crash leaves
// the old record standing for the new image. A name without a record
// needs nothing.
func (m *manifest) replacing(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := digestOf(name)
	if _, ok := m.recs[d]; !ok {
		return nil
	}
	if err := m.appendLocked(formatRecord(name, nil)); err != nil {
		return err
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, ManifestFile), err)
	}
	delete(m.recs, d)
	return nil
}

// record notes, in the file, that name now holds the code rec says (the
// planning that reads recs is over by then).
func (m *manifest) record(name string, rec record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appendLocked(formatRecord(name, &rec))
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
		return fmt.Errorf("write %s: %w", filepath.Join(m.dir, ManifestFile), err)
	}
	return nil
}
