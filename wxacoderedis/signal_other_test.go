//go:build !unix

package wxacoderedis

import "os"

// No SIGSTOP here: the frozen-Redis test fails to send it and says so
// (redis-server, and these tests, run on unix).
var (
	sigStop os.Signal = os.Interrupt
	sigCont os.Signal = os.Interrupt
)
