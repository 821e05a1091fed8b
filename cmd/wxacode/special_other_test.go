//go:build !unix

package main

import "errors"

// mkfifo: no FIFOs here; the tests that need one skip.
func mkfifo(string) error { return errors.ErrUnsupported }

// mkchar: no device nodes here; the tests that need one skip.
func mkchar(string, int, int) error { return errors.ErrUnsupported }
