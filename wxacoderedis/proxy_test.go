package wxacoderedis

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpProxy stands between a replica and Redis on a loopback port, to make
// Redis slow or cut off for that replica alone: every chunk Redis sends is
// held for the delay before it is passed on, and a black-holed proxy
// accepts connections and passes nothing either way, as a partition does.
type tcpProxy struct {
	addr   string
	target string
	ln     net.Listener

	mu     sync.Mutex
	delay  time.Duration
	holed  bool
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startProxy starts a proxy to target and stops it (and every connection
// through it) when t ends.
func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// setDelay holds every reply for d from now on.
func (p *tcpProxy) setDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// blackHole stops passing anything, on open connections and new ones.
func (p *tcpProxy) blackHole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed = true
}

func (p *tcpProxy) state() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay, p.holed
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *tcpProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			_ = client.Close()
			return
		}
		p.wg.Go(func() { p.serve(client) })
	}
}

// serve pipes one connection: requests as they come (unless black-holed),
// replies each held for the delay, in order.
func (p *tcpProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		_ = server.Close()
		return
	}
	defer server.Close()
	type chunk struct {
		b  []byte
		at time.Time
	}
	replies := make(chan chunk, 1024)
	var wg sync.WaitGroup
	wg.Go(func() { // client -> server
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if _, holed := p.state(); !holed {
					if _, err := server.Write(buf[:n]); err != nil {
						break
					}
				}
			}
			if err != nil {
				break
			}
		}
		_ = server.Close()
	})
	wg.Go(func() { // server -> replies queue
		defer close(replies)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				delay, holed := p.state()
				if !holed {
					replies <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(delay)}
				}
			}
			if err != nil {
				return
			}
		}
	})
	for c := range replies { // replies queue -> client, each on time
		time.Sleep(time.Until(c.at))
		if _, holed := p.state(); holed {
			continue
		}
		if _, err := client.Write(c.b); err != nil {
			break
		}
	}
	_ = client.Close()
	_, _ = io.Copy(io.Discard, server) // let the reader end
	wg.Wait()
}
