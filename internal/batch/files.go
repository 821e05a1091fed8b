package batch

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/atomicfile"
	"github.com/go-wxacode/wxacode/internal/imagecheck"
)

// FileBase maps a scene to a file name without extension, one to one:
// bytes other than A-Z a-z 0-9 - _ and . become %XX (upper-case hex), and
// so does a leading ".", so no scene can name a hidden file, "." or "..",
// or reach outside the output directory. "id=42" becomes "id%3D42",
// "a/b" becomes "a%2Fb".
func FileBase(scene string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(scene); i++ {
		c := scene[i]
		keep := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || (c == '.' && i > 0)
		if keep {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
	}
	return b.String()
}

// checkFilename accepts a file name given in a CSV row: one path element,
// not hidden, without control characters. A .jpg, .jpeg or .png extension
// is dropped: the extension comes from the image received.
func checkFilename(name string) (string, error) {
	base := name
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		base = strings.TrimSuffix(name, filepath.Ext(name))
	}
	switch {
	case base == "":
		return "", errors.New("empty file name")
	case strings.ContainsAny(base, `/\`), strings.HasPrefix(base, "."):
		return "", fmt.Errorf("unsafe file name %q: one name, not starting with a dot, without / or \\", name)
	case strings.ContainsFunc(base, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", fmt.Errorf("file name %q holds a control character", name)
	case len(base) > 200:
		return "", fmt.Errorf("file name %q is too long", name)
	}
	return base, nil
}

// base returns the file name, without extension, that rw writes: its
// filename (checked when planned), or one derived from its scene.
func (rw row) base() string {
	if rw.filename == "" {
		return FileBase(rw.scene)
	}
	base, _ := checkFilename(rw.filename)
	return base
}

// tailWindow is how much of a file's end a probe reads: an image's end
// marker is in its last bytes.
const tailWindow = 4 << 10

// headLen is how much of a file's start a probe reads: the signature.
const headLen = 8

// completeFile reports whether path is a regular file holding a complete
// image. It reads the first bytes and the last 4 KiB, not the whole file,
// so that resuming a large batch costs two small reads a scene.
func completeFile(path string) bool {
	var p imageProbe
	return p.complete(path)
}

// imageProbe checks files for complete images with one buffer, so that
// planning 100,000 rows does not make 400 MB of garbage. It is not safe
// for concurrent use.
type imageProbe struct{ buf []byte }

// present returns the name of a complete image already saved for base in
// dir, or "". Anything else under that name (a file cut short, an HTML
// page, an empty file) does not count: the scene is minted again. Whether
// the image is of the right request is the manifest's to say.
func (p *imageProbe) present(dir, base string) string {
	for _, ext := range []string{".jpg", ".png"} {
		// The type must be the name's too: a GIF called .jpg is not ours.
		if p.complete(filepath.Join(dir, base+ext)) && wxacode.ImageExt(p.buf[:headLen]) == ext {
			return base + ext
		}
	}
	return ""
}

// complete is completeFile with p's buffer.
func (p *imageProbe) complete(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	if p.buf == nil {
		p.buf = make([]byte, headLen+tailWindow)
	}
	data := p.buf
	if size := fi.Size(); size <= headLen+tailWindow {
		n, err := io.ReadFull(f, data[:size])
		return err == nil && imagecheck.Check(data[:n]) == ""
	}
	if _, err := io.ReadFull(f, data[:headLen]); err != nil {
		return false
	}
	if _, err := f.ReadAt(data[headLen:], fi.Size()-tailWindow); err != nil {
		return false
	}
	return imagecheck.Check(data) == ""
}

// writeAtomic writes data to dir/name through a temporary file that is
// synced and renamed: the name holds the whole image or nothing.
func writeAtomic(dir, name string, data []byte) error {
	if err := atomicfile.Write(dir, name, data); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// caseInsensitive reports whether dir treats file names that differ only
// in case as one: it creates a file and looks for it under another case.
func caseInsensitive(dir string) bool {
	f, err := atomicfile.CreateTemp(dir)
	if err != nil {
		return false
	}
	name := f.Name()
	_ = f.Close()
	defer os.Remove(name)
	base := filepath.Base(name)
	other := strings.ToUpper(base)
	if other == base {
		return false
	}
	a, errA := os.Stat(name)
	b, errB := os.Stat(filepath.Join(dir, other))
	return errA == nil && errB == nil && os.SameFile(a, b)
}

// failure is a row that could not be minted.
type failure struct {
	row            // as read: line (for ordering), scene, page, filename
	errcode string // the API's errcode, "" for local and transport errors
	errmsg  string
	hint    string // how to fix it, for some API errors
}

// FailuresFile is the name of the failures report in the output directory.
const FailuresFile = "failures.csv"

// writeFailures writes dir/failures.csv (scene,page,filename,errcode,
// errmsg: every column a row needs to be minted again, page and filename
// as the input gave them) in input order, or removes an old one when
// nothing failed.
func writeFailures(dir string, fails []failure) error {
	path := filepath.Join(dir, FailuresFile)
	if len(fails) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	sort.SliceStable(fails, func(i, j int) bool { return fails[i].line < fails[j].line })
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"scene", "page", "filename", "errcode", "errmsg"})
	for _, f := range fails {
		_ = w.Write([]string{f.scene, f.page, f.filename, f.errcode, f.errmsg})
	}
	w.Flush()
	return writeAtomic(dir, FailuresFile, []byte(b.String()))
}

// unwrapPath returns the cause of a file error without the temporary
// file's name.
func unwrapPath(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
