package wxacode

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testToken and testSecret are credentials that must never show up in an
// error or a log record.
const (
	testToken  = "TOKEN-abcdefghijklmnopqrstuvwxyz012345"
	testSecret = "SECRET-0123456789abcdef0123456789abcdef"
	testAppID  = "wx0123456789abcdef"
)

// fastRetries keeps retry waits short in tests that do not look at them.
func fastRetries() Option { return WithRetryBackoff(time.Millisecond, 2*time.Millisecond) }

// testServer is an httptest.Server that counts the connections it accepts.
type testServer struct {
	*httptest.Server
	conns atomic.Int64
}

// newTestServer starts a testServer running h and registers its Close.
func newTestServer(t *testing.T, h http.Handler) *testServer {
	t.Helper()
	s := &testServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// setup starts a testServer running h and returns a Client pointed at it
// with ts (StaticToken(testToken) when nil).
func setup(t *testing.T, ts TokenSource, h http.HandlerFunc, opts ...Option) (*Client, *testServer) {
	t.Helper()
	srv := newTestServer(t, h)
	if ts == nil {
		ts = StaticToken(testToken)
	}
	all := append([]Option{WithBaseURL(srv.URL), fastRetries()}, opts...)
	return NewClient(ts, all...), srv
}

// testJPEG and testPNG return small, complete images as the service would
// send them.
func testJPEG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testImage(), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testPNG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, testImage()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testImage() image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		img.Set(x, x, color.Black)
	}
	return img
}

// writeImage answers body with Content-Type ct.
func writeImage(w http.ResponseWriter, ct string, body []byte) {
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(body)
}

// writeErr answers a JSON error as the service does.
func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_, _ = io.WriteString(w, `{"errcode":`+strconv.Itoa(code)+`,"errmsg":"`+msg+`"}`)
}

// hangUp closes the connection without an answer: a transport error.
func hangUp(t *testing.T, w http.ResponseWriter) {
	t.Helper()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

// recordingInvalidator is a TokenSource that hands out tokens in order and
// records invalidations.
type recordingInvalidator struct {
	mu          sync.Mutex
	tokens      []string
	next        int
	invalidated []string
}

func (r *recordingInvalidator) Token(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tok := r.tokens[min(r.next, len(r.tokens)-1)]
	return tok, nil
}

func (r *recordingInvalidator) InvalidateToken(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invalidated = append(r.invalidated, tok)
	r.next++
}

func (r *recordingInvalidator) Invalidated() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.invalidated...)
}

// runtimeMem reads how many bytes the process has allocated so far.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.total = s.TotalAlloc
}
