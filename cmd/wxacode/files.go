package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// tempPattern names files being written; they are renamed when complete,
// so a final name only ever holds a whole image.
const tempPattern = ".wxacode-*.tmp"

// fileBase maps a scene to a file name without extension, one to one:
// bytes other than A-Z a-z 0-9 - _ and . become %XX (upper-case hex), and
// so does a leading ".", so no scene can name a hidden file, "." or "..",
// or reach outside the output directory. "id=42" becomes "id%3D42",
// "a/b" becomes "a%2Fb".
func fileBase(scene string) string {
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
// not hidden. A .jpg, .jpeg or .png extension is dropped: the extension
// comes from the image received.
func checkFilename(name string) (string, error) {
	base := name
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		base = strings.TrimSuffix(name, filepath.Ext(name))
	}
	switch {
	case base == "":
		return "", errors.New("empty file name")
	case strings.ContainsAny(base, `/\`+"\x00"), strings.HasPrefix(base, "."):
		return "", fmt.Errorf("unsafe file name %q: one name, not starting with a dot, without / or \\", name)
	case len(base) > 200:
		return "", fmt.Errorf("file name %q is too long", name)
	}
	return base, nil
}

// presentImage returns the name of an image already saved for base in
// dir, or "".
func presentImage(dir, base string) string {
	// The extensions wxacode.ImageExt gives: an image saved under any of
	// them counts as present.
	for _, ext := range []string{".jpg", ".png", ".gif", ".webp", ".bmp", ".bin"} {
		fi, err := os.Stat(filepath.Join(dir, base+ext))
		if err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			return base + ext
		}
	}
	return ""
}

// writeAtomic writes data to dir/name through a temporary file that is
// synced and renamed: the name holds the whole image or nothing.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o644) // CreateTemp makes 0600; images are meant to be shared
	if err == nil {
		_, err = f.Write(data)
	}
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
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// removeStaleTemps deletes temporary files a killed run left behind.
func removeStaleTemps(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, tempPattern))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// checkWritable makes sure dir exists (creating it if create is set) and
// takes files.
func checkWritable(dir string, create bool) error {
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("output directory: %w", err)
		}
	}
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// failure is a scene that could not be minted.
type failure struct {
	line    int    // input line, for ordering
	scene   string // as read
	errcode string // the API's errcode, "" for local and transport errors
	errmsg  string
}

// failuresFile is the name of the failures report in the output directory.
const failuresFile = "failures.csv"

// writeFailures writes dir/failures.csv (scene,errcode,errmsg) in input
// order, or removes an old one when nothing failed.
func writeFailures(dir string, fails []failure) error {
	path := filepath.Join(dir, failuresFile)
	if len(fails) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	sort.Slice(fails, func(i, j int) bool { return fails[i].line < fails[j].line })
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"scene", "errcode", "errmsg"})
	for _, f := range fails {
		_ = w.Write([]string{f.scene, f.errcode, f.errmsg})
	}
	w.Flush()
	return writeAtomic(dir, failuresFile, []byte(b.String()))
}
