//go:build !linux

package wxacoderedis

import "syscall"

// childAttr: no parent-death signal here; a child outlives a test process
// that panics or is killed (t.Cleanup stops it otherwise).
func childAttr() *syscall.SysProcAttr { return nil }
