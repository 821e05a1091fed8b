package wxacoderedis

import (
	"context"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server a test started on a free loopback port.
type redisServer struct {
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
	argv []string // to start it again
}

// startRedis starts a redis-server for t and stops it when t ends. Without
// redis-server on the PATH the test is skipped, or fails when CI is set, so
// that CI always runs against a real server.
func startRedis(t *testing.T, args ...string) *redisServer { return startRedisB(t, args...) }

// startRedisB is startRedis for tests and benchmarks; args are added to
// redis-server's command line.
func startRedisB(t testing.TB, args ...string) *redisServer {
	t.Helper()
	bin := redisServerBin(t)
	port := freePort(t)
	cmd := exec.Command(bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)...)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &redisServer{addr: net.JoinHostPort("127.0.0.1", port), cmd: cmd, argv: cmd.Args}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = s.cmd.Process.Signal(sigCont) // let a stopped server run its exit
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, Password: passwordIn(args)})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer within 10 s", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// redisServerBin returns the path of redis-server. Without it on the PATH
// the test is skipped, or fails when CI is set, so that CI always runs
// against a real server.
func redisServerBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed; CI must install it (apt-get install -y redis-server)")
		}
		t.Skip("redis-server not found: install it (apt-get install -y redis-server) to run this test")
	}
	return bin
}

// restart kills the server and starts another on the same port after
// down: everything it held is lost, as when Redis restarts without
// persistence. It reports what went wrong rather than failing t, so that
// it may run in a goroutine of its own.
func (s *redisServer) restart(down time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	time.Sleep(down)
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	return nil
}

// stop and cont freeze and thaw the server: it keeps accepting
// connections (the kernel does) and answers nothing.
func (s *redisServer) stop(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sigStop); err != nil {
		t.Fatal(err)
	}
}

func (s *redisServer) cont(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sigCont); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// newRDB returns a go-redis client for addr with the default options, as
// most users pass them, counting the commands it is asked to send.
func newRDB(t testing.TB, addr string) (*redis.Client, *countHook) {
	t.Helper()
	return newRDBWith(t, &redis.Options{Addr: addr})
}

// newRDBWith is newRDB for a client of other options.
func newRDBWith(t testing.TB, opt *redis.Options) (*redis.Client, *countHook) {
	t.Helper()
	rdb := redis.NewClient(opt)
	h := &countHook{}
	rdb.AddHook(h)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, h
}

// countHook counts the commands a client is asked to send.
type countHook struct {
	n      atomic.Int64
	mu     sync.Mutex
	byName map[string]int
}

func (h *countHook) count(cmd redis.Cmder) {
	h.n.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byName == nil {
		h.byName = make(map[string]int)
	}
	h.byName[cmd.Name()]++
}

// names returns a copy of the counts by command name.
func (h *countHook) names() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.byName)
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return next(ctx, cmds)
	}
}

// passwordIn returns the --requirepass of a redis-server command line.
func passwordIn(args []string) string {
	for i, a := range args {
		if a == "--requirepass" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
