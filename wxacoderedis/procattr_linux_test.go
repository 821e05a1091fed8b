//go:build linux

package wxacoderedis

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// childAttr makes a child process (a redis-server, a replica) die with the
// test process, also when the test panics or is killed and no t.Cleanup
// runs: Linux's parent-death signal.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// TestRedisDiesWithTheTest: a test process that crashes (a panic in a
// goroutine other than the test's, a -timeout) runs no Cleanup; the
// redis-server it started must not outlive it. (A panic in the test's own
// goroutine runs its Cleanups: that case needs no help.)
func TestRedisDiesWithTheTest(t *testing.T) {
	if os.Getenv("WXACODEREDIS_ORPHAN") != "" {
		s := startRedis(t)
		fmt.Printf("redis-server pid %d\n", s.cmd.Process.Pid)
		go panic("a goroutine panics: the process ends, no Cleanup runs")
		select {}
	}
	redisServerBin(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedisDiesWithTheTest$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WXACODEREDIS_ORPHAN=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child did not panic:\n%s", out)
	}
	m := regexp.MustCompile(`(?m)^redis-server pid (\d+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the child printed no redis-server pid:\n%s", out)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("redis-server %d still runs 10 s after the test process that started it crashed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether process pid runs (a zombie, dead but not yet
// reaped, does not).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
