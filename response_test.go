package wxacode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
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

func TestResponses(t *testing.T) {
	jpg, pngImg := testJPEG(t), testPNG(t)
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	tests := []struct {
		name        string
		status      int
		contentType string // "" sends no Content-Type
		body        []byte
		wantImage   []byte
		wantCode    int    // *APIError with this code
		wantResp    string // *ResponseError whose message holds this
	}{
		{"jpeg", 200, "image/jpeg", jpg, jpg, 0, ""},
		{"png", 200, "image/png", pngImg, pngImg, 0, ""},
		{"gif is an image too", 200, "image/gif", gif, gif, 0, ""},
		{"jpeg with trailing padding", 200, "image/jpeg", append(append([]byte{}, jpg...), 0, 0), append(append([]byte{}, jpg...), 0, 0), 0, ""},
		{"json error", 200, "application/json; encoding=utf-8", []byte(`{"errcode":41030,"errmsg":"invalid page rid: 1a2b"}`), nil, 41030, ""},
		{"json error as text/plain", 200, "text/plain", []byte(`{"errcode":40129,"errmsg":"invalid scene"}`), nil, 40129, ""},
		{"json error without content type", 200, "", []byte(` {"errcode":40097,"errmsg":"invalid args"}`), nil, 40097, ""},
		{"json error labelled as image", 200, "image/jpeg", []byte(`{"errcode":45009,"errmsg":"reach max api daily quota limit"}`), nil, 45009, ""},
		{"json error with 4xx status", 400, "application/json", []byte(`{"errcode":40169,"errmsg":"invalid length for scene"}`), nil, 40169, ""},
		{"html 502 page", 502, "text/html", []byte("<html><body>502 Bad Gateway</body></html>"), nil, 0, "HTTP 502, Content-Type text/html"},
		{"empty 200", 200, "image/jpeg", nil, nil, 0, "HTTP 200, Content-Type image/jpeg): empty body"},
		{"empty 200 no type", 200, "", nil, nil, 0, "Content-Type none): empty body"},
		{"errcode 0 without image", 200, "application/json", []byte(`{"errcode":0,"errmsg":"ok"}`), nil, 0, "errcode 0 without an image"},
		{"text body", 200, "text/plain", []byte("hello"), nil, 0, "neither an image nor a JSON error"},
		{"html labelled as image", 200, "image/png", []byte("<html>oops</html>"), nil, 0, "not an image"},
		{"truncated png", 200, "image/png", pngImg[:len(pngImg)-20], nil, 0, "truncated PNG"},
		{"truncated jpeg", 200, "image/jpeg", jpg[:len(jpg)/2], nil, 0, "truncated JPEG"},
		{"image with error status", 500, "image/jpeg", jpg, nil, 0, "HTTP 500"},
		{"json without errcode", 200, "application/json", []byte(`{"hello":1}`), nil, 0, "neither an image nor a JSON error"},
		{"errcode as a string of digits", 200, "application/json", []byte(`{"errcode":"41030","errmsg":"invalid page"}`), nil, 41030, ""},
		{"errmsg that is not a string", 200, "application/json", []byte(`{"errcode":40097,"errmsg":{"detail":1}}`), nil, 40097, ""},
		{"byte order mark before the json", 200, "application/json", []byte("\xef\xbb\xbf{\"errcode\":40129,\"errmsg\":\"invalid scene\"}"), nil, 40129, ""},
		{"png with bytes after IEND", 200, "image/png", append(append([]byte{}, pngImg...), "trailing"...), append(append([]byte{}, pngImg...), "trailing"...), 0, ""},
		{"errcode that is not a number", 200, "application/json", []byte(`{"errcode":"abc"}`), nil, 0, "neither an image nor a JSON error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType == "" {
					w.Header()["Content-Type"] = nil // keep net/http from sniffing one
				} else {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
			}, WithMaxAttempts(1))
			img, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			switch {
			case tc.wantImage != nil:
				if err != nil {
					t.Fatalf("err = %v, want image", err)
				}
				if !bytes.Equal(img, tc.wantImage) {
					t.Errorf("image differs from what was sent (%d vs %d bytes)", len(img), len(tc.wantImage))
				}
			case tc.wantCode != 0:
				var apiErr *APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("err = %v, want *APIError", err)
				}
				if apiErr.Code != tc.wantCode {
					t.Errorf("Code = %d, want %d", apiErr.Code, tc.wantCode)
				}
				if img != nil {
					t.Errorf("image returned with an API error")
				}
			default:
				var respErr *ResponseError
				if !errors.As(err, &respErr) {
					t.Fatalf("err = %v, want *ResponseError", err)
				}
				if respErr.StatusCode != tc.status {
					t.Errorf("StatusCode = %d, want %d", respErr.StatusCode, tc.status)
				}
				if !strings.Contains(err.Error(), tc.wantResp) {
					t.Errorf("err = %q, want it to contain %q", err, tc.wantResp)
				}
				if !strings.HasPrefix(err.Error(), "wxacode: ") {
					t.Errorf("err = %q, want prefix wxacode:", err)
				}
			}
		})
	}
}

func TestBodyCaps(t *testing.T) {
	const fifty = 50 << 20
	chunk := bytes.Repeat([]byte{0xff}, 32<<10)
	tests := []struct {
		name          string
		contentType   string
		contentLength bool // announce the size, or stream it chunked
		size          int
	}{
		{"50 MB image announced", "image/jpeg", true, fifty},
		{"50 MB image streamed", "image/jpeg", false, fifty},
		{"5 MB image announced", "image/png", true, 5 << 20},
		{"65 KB of json streamed", "application/json", false, 65 << 10},
		{"1 MB of html announced", "text/html", true, 1 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
				}
				for sent := 0; sent < tc.size; sent += len(chunk) {
					if _, err := w.Write(chunk[:min(len(chunk), tc.size-sent)]); err != nil {
						return // the client hung up, as it should
					}
				}
			}, WithMaxAttempts(1))
			var before, after runtimeMem
			before.read()
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			after.read()
			var respErr *ResponseError
			if !errors.As(err, &respErr) || !strings.Contains(respErr.Reason, "limit") {
				t.Fatalf("err = %v, want a *ResponseError about the size limit", err)
			}
			// io.ReadAll over a LimitReader: about twice the 4 MiB cap.
			if got := after.total - before.total; !raceEnabled && got >= 16<<20 {
				t.Errorf("allocated %d MiB reading a %d MiB body, want under 16", got>>20, tc.size>>20)
			}
		})
	}
}

// TestRefusedBodiesNeverBlock: a redirect, or a declared length over the
// cap, is refused at once even when the body then stalls, and even with an
// HTTP client without a timeout and a context without a deadline.
func TestRefusedBodiesNeverBlock(t *testing.T) {
	tests := []struct {
		name   string
		header func(h http.Header)
		status int
	}{
		{"302 with a stalled body", func(h http.Header) { h.Set("Location", "http://elsewhere.invalid/") }, 302},
		{"307 with a stalled body", func(h http.Header) { h.Set("Location", "http://elsewhere.invalid/") }, 307},
		{"declared image over the cap", func(h http.Header) { h.Set("Content-Type", "image/jpeg") }, 200},
		{"declared JSON over the cap", func(h http.Header) { h.Set("Content-Type", "application/json") }, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, token := range []bool{false, true} {
				stall := make(chan struct{})
				srv := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					tc.header(w.Header())
					w.Header().Set("Content-Length", strconv.Itoa(maxImageBytes+1))
					if token {
						w.Header().Set("Content-Type", "application/json")
					}
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte("\xff\xd8\xff\xe0 a few bytes, then nothing"))
					http.NewResponseController(w).Flush()
					select {
					case <-stall:
					case <-r.Context().Done():
					}
				}))
				// Registered after the server's Close, so it runs first: a
				// client that does hang does not keep Close waiting.
				t.Cleanup(func() { close(stall) })
				opts := []Option{WithBaseURL(srv.URL), WithHTTPClient(&http.Client{}), WithMaxAttempts(1)}
				done := make(chan error, 1)
				go func() {
					if token {
						_, err := NewStableTokenSource(testAppID, testSecret, opts...).Token(context.Background())
						done <- err
						return
					}
					_, err := NewClient(StaticToken(testToken), opts...).GetUnlimited(context.Background(), Request{Scene: "a=1"})
					done <- err
				}()
				select {
				case err := <-done:
					var respErr *ResponseError
					if !errors.As(err, &respErr) || respErr.StatusCode != tc.status {
						t.Errorf("token %v: err = %v, want a *ResponseError with status %d", token, err, tc.status)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("token %v: still waiting on a stalled body after 5 s", token)
				}
			}
		})
	}
}

// TestResponseErrorKeepsBody: an answer that is neither an image nor a
// JSON error keeps its first 512 bytes, so a proxy's page can be read from
// the error alone.
func TestResponseErrorKeepsBody(t *testing.T) {
	page := "<html><title>502 Bad Gateway</title>" + strings.Repeat("nginx ", 200) + "</html>"
	tests := []struct {
		name     string
		status   int
		ct, body string
		want     string
	}{
		{"HTML 502", 502, "text/html", page, page[:512]},
		{"short text", 404, "text/plain", "no such path", "no such path"},
		{"empty", 200, "image/jpeg", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}, WithMaxAttempts(1))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			var respErr *ResponseError
			if !errors.As(err, &respErr) {
				t.Fatalf("err = %v, want a *ResponseError", err)
			}
			if got := string(respErr.Body); got != tc.want {
				t.Errorf("Body = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestBodyReadAllocatesOnce: a body of declared length is read into one
// buffer of that size.
func TestBodyReadAllocatesOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations; .ci/run runs this without it")
	}
	img := make([]byte, 10<<10)
	body := bytes.NewReader(img)
	resp := &http.Response{StatusCode: 200, ContentLength: int64(len(img)), Header: http.Header{}}
	allocs := testing.AllocsPerRun(100, func() {
		body.Reset(img)
		resp.Body = io.NopCloser(body)
		got, err := readBody(resp, maxImageBytes)
		if err != nil || len(got) != len(img) {
			t.Fatalf("readBody = %d bytes, %v", len(got), err)
		}
	})
	// One for the buffer; the rest is the LimitReader and NopCloser.
	if allocs > 3 {
		t.Errorf("reading a 10 KB body of declared length: %.0f allocations, want at most 3", allocs)
	}
	var m runtimeMem
	m.read()
	before := m.total
	body.Reset(img)
	resp.Body = io.NopCloser(body)
	_, _ = readBody(resp, maxImageBytes)
	m.read()
	if got := m.total - before; got > 12<<10 {
		t.Errorf("reading a 10 KB body allocated %d bytes, want about 10 KB", got)
	}
}
