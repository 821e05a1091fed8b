package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// output is where "get -o PATH" writes: a file replaced atomically (dir,
// name: the end of any chain of symlinks, so a link stays a link), or a
// FIFO, device or descriptor written in place.
type output struct {
	path      string // as given
	dir, name string // the file to replace, unless inPlace
	inPlace   bool
}

// resolveOutput decides how to write to path, before any call is made. A
// directory, or a link to one, is refused.
func resolveOutput(path string) (output, error) {
	o := output{path: path}
	if strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)) {
		return o, fmt.Errorf("-o %s names a directory; give a file name, such as %s", path, filepath.Join(path, "code.jpg"))
	}
	fi, err := os.Stat(path) // through links
	switch {
	case err == nil && fi.IsDir():
		return o, fmt.Errorf("-o %s is a directory; give a file name, such as %s", path, filepath.Join(path, "code.jpg"))
	case err == nil && !fi.Mode().IsRegular():
		// A FIFO, a character device (/dev/stdout on a pipe or a
		// terminal, /dev/null), a socket: written as it is, never
		// replaced by a file.
		o.inPlace = true
		return o, nil
	}
	real := path
	for range 40 { // as the kernel follows at most 40 links
		li, err := os.Lstat(real)
		if err != nil || li.Mode()&os.ModeSymlink == 0 {
			break
		}
		target, err := os.Readlink(real)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(real), target)
		}
		if strings.HasPrefix(target, "/proc/") || strings.HasPrefix(target, "/dev/fd/") {
			// A process's descriptor (/dev/stdout on a file, perhaps
			// opened by ">>"): write through it, never replace the file
			// it names.
			o.inPlace = true
			return o, nil
		}
		real = target
	}
	o.dir, o.name = filepath.Dir(real), filepath.Base(real)
	return o, nil
}

// write writes img to the output.
func (o output) write(img []byte) error {
	if !o.inPlace {
		return writeAtomic(o.dir, o.name, img)
	}
	// O_APPEND: a descriptor a shell opened with ">>" keeps what the
	// file held; one opened with ">" was emptied, so its end is its start.
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	_, err = f.Write(img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	return nil
}
