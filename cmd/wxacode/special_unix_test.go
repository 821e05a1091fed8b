//go:build unix

package main

import "syscall"

// mkfifo makes a FIFO at path.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// mkchar makes a character device at path with Linux's major and minor
// numbers (1, 3 is /dev/null; 1, 7 is /dev/full).
func mkchar(path string, major, minor int) error {
	return syscall.Mknod(path, syscall.S_IFCHR|0o666, major<<8|minor)
}
