package wxacode

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestImageExt(t *testing.T) {
	tests := []struct {
		name string
		img  []byte
		want string
	}{
		{"jpeg", testJPEG(t), ".jpg"},
		{"png", testPNG(t), ".png"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ".gif"},
		{"json", []byte(`{"errcode":1}`), ".bin"},
		{"empty", nil, ".bin"},
	}
	for _, tc := range tests {
		if got := ImageExt(tc.img); got != tc.want {
			t.Errorf("ImageExt(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestSloppyErrorsStillDriveTheClient: an errcode sent as a string, behind
// a byte order mark, still refreshes a rejected token and retries -1.
func TestSloppyErrorsStillDriveTheClient(t *testing.T) {
	var calls atomic.Int64
	ts := &recordingInvalidator{tokens: []string{"old-token-1234", "new-token-5678"}}
	c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			_, _ = io.WriteString(w, "\xef\xbb\xbf{\"errcode\":\"40001\",\"errmsg\":7}")
		case 2:
			_, _ = io.WriteString(w, ` {"errcode":"-1","errmsg":null}`)
		default:
			writeImage(w, "image/jpeg", testJPEG(t))
		}
	})
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatalf("err = %v, want the image after a refresh and a retry", err)
	}
	if got := ts.Invalidated(); len(got) != 1 || got[0] != "old-token-1234" {
		t.Errorf("invalidated %v, want the old token once", got)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("calls = %d, want 3", got)
	}
}

// TestMemoryFollowsBytesReceived: 32 calls to a server that declares a
// 4 MiB body and stalls after a few bytes must not allocate the declared
// sizes.
func TestMemoryFollowsBytesReceived(t *testing.T) {
	const calls = 32
	stall := make(chan struct{})
	srv := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", strconv.Itoa(maxImageBytes))
		_, _ = w.Write([]byte("\xff\xd8\xff\xe0"))
		http.NewResponseController(w).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	reading := make(chan struct{}, calls)
	hc := &http.Client{Transport: firstReadTransport{base: http.DefaultTransport, reading: reading}}
	c := NewClient(StaticToken(testToken), WithBaseURL(srv.URL), WithHTTPClient(hc), WithMaxAttempts(1))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		close(stall)
		wg.Wait()
	})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		wg.Go(func() { _, _ = c.GetUnlimited(ctx, Request{Scene: "a=1"}) })
	}
	for range calls {
		select {
		case <-reading:
		case <-time.After(10 * time.Second):
			t.Fatal("calls did not start reading their bodies")
		}
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown >= 8<<20 {
		t.Errorf("%d stalled calls allocated %d bytes, want under 8 MiB", calls, grown)
	}
}

// firstReadTransport signals on reading when a response body is first
// read: by then the client has allocated what it reads into.
type firstReadTransport struct {
	base    http.RoundTripper
	reading chan<- struct{}
}

func (f firstReadTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(r)
	if err == nil {
		resp.Body = &signalBody{ReadCloser: resp.Body, reading: f.reading}
	}
	return resp, err
}

type signalBody struct {
	io.ReadCloser
	reading chan<- struct{}
	once    sync.Once
}

func (b *signalBody) Read(p []byte) (int, error) {
	b.once.Do(func() { b.reading <- struct{}{} })
	return b.ReadCloser.Read(p)
}
