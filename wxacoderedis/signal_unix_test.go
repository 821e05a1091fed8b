//go:build unix

package wxacoderedis

import "syscall"

// Stopping and continuing a process, for a frozen Redis.
var (
	sigStop syscall.Signal = syscall.SIGSTOP
	sigCont syscall.Signal = syscall.SIGCONT
)
