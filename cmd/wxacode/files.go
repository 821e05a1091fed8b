package main

import (
	"fmt"
	"path/filepath"

	"github.com/go-wxacode/wxacode/internal/atomicfile"
)

// writeAtomic writes data to dir/name through a temporary file that is
// synced and renamed: the name holds the whole image or nothing.
func writeAtomic(dir, name string, data []byte) error {
	if err := atomicfile.Write(dir, name, data); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}
