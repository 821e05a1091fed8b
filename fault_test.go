package wxacode_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

const faultToken = "FAULT_TOKEN_must_never_appear_0123456789"

// goroutinesSettle waits for the goroutine count to come back to at most
// want, and reports the stacks if it does not.
func goroutinesSettle(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > want {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines after the test, want at most %d:\n%s", got, want, buf)
	}
}

// TestFaults: transport faults end in an error without the token and leave
// no goroutine behind. Malformed answers (HTML 502 pages, empty bodies,
// truncated images) are in TestResponses.
func TestFaults(t *testing.T) {
	chunk := bytes.Repeat([]byte{0xff}, 32<<10)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		timeout time.Duration // the HTTP client's; 0 = 10 s
		want    string        // part of the error message
	}{
		{"connection closed mid-body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-Length", "10000")
			_, _ = w.Write([]byte("\xff\xd8\xff\xe0 only the start"))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler) // cut the connection
		}, 0, "unexpected EOF"},
		{"slow past the timeout", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the hang-up
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, 100 * time.Millisecond, "Client.Timeout exceeded"},
		{"50 MB", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			for range (50 << 20) / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, 0, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			srv := httptest.NewServer(tc.handler)
			hc := &http.Client{Timeout: tc.timeout, Transport: &http.Transport{}}
			if tc.timeout == 0 {
				hc.Timeout = 10 * time.Second
			}
			c := wxacode.NewClient(wxacode.StaticToken(faultToken), wxacode.WithBaseURL(srv.URL), wxacode.WithHTTPClient(hc),
				wxacode.WithMaxAttempts(2), wxacode.WithRetryBackoff(time.Millisecond, time.Millisecond))

			img, err := c.GetUnlimited(context.Background(), wxacode.Request{Scene: "a=1"})

			srv.Close()
			hc.CloseIdleConnections()
			if err == nil || img != nil {
				t.Fatalf("GetUnlimited = %d bytes, %v; want an error", len(img), err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if strings.Contains(msg, faultToken) {
				t.Errorf("error holds the token: %q", msg)
			}
			goroutinesSettle(t, before)
		})
	}
}

// TestLoadWithInjectedFaults: 10,000 requests at concurrency 64 against the
// fake with 1% of calls answering -1. Retries fix them all, one token is
// fetched, and connections are reused.
func TestLoadWithInjectedFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const total, concurrency = 10000, 64
	srv := wxacodetest.NewServer(wxacodetest.WithMinuteQuota(0), wxacodetest.WithFailEvery(100, wxacode.CodeSystemBusy))
	t.Cleanup(srv.Close)
	// MaxConnsPerHost caps open connections, not new ones: a connection
	// dropped instead of reused is replaced by a new dial and counted
	// below. Without the cap the transport may dial a few extra while a
	// finished connection is on its way back to the idle pool.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	t.Cleanup(hc.CloseIdleConnections)
	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL), wxacode.WithHTTPClient(hc))
	c := wxacode.NewClient(ts, wxacode.WithBaseURL(srv.URL), wxacode.WithHTTPClient(hc),
		wxacode.WithMaxAttempts(5), wxacode.WithRetryBackoff(time.Millisecond, 5*time.Millisecond))

	failed := runLoad(t, c, total, concurrency, nil)

	if failed != 0 {
		t.Errorf("%d of %d requests failed", failed, total)
	}
	reqs := srv.Requests()
	busy := 0
	for _, r := range reqs {
		if r.ErrCode == wxacode.CodeSystemBusy {
			busy++
		}
	}
	if busy < total/100 || len(reqs) != total+busy {
		t.Errorf("server saw %d calls with %d busy answers, want %d + busy with about 1%% busy", len(reqs), busy, total)
	}
	if got := srv.TokenRequests(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	if got := srv.Conns(); got > concurrency {
		t.Errorf("%d connections opened, want at most %d (the concurrency)", got, concurrency)
	}
}

// TestLoadWithTokenExpiry: every token expires in the middle of a load; all
// requests still succeed, with a bounded number of token fetches.
func TestLoadWithTokenExpiry(t *testing.T) {
	const total, concurrency = 2000, 64
	srv := wxacodetest.NewServer(wxacodetest.WithMinuteQuota(0))
	t.Cleanup(srv.Close)
	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL))
	c := wxacode.NewClient(ts, wxacode.WithBaseURL(srv.URL))

	var once sync.Once
	failed := runLoad(t, c, total, concurrency, func(done int) {
		if done >= total/4 {
			once.Do(srv.ExpireTokens)
		}
	})

	if failed != 0 {
		t.Errorf("%d of %d requests failed", failed, total)
	}
	expired := 0
	for _, r := range srv.Requests() {
		if r.ErrCode == wxacode.CodeAccessTokenExpired {
			expired++
		}
	}
	if expired == 0 {
		t.Error("no request met the expired token: the test did not test expiry")
	}
	if got := srv.TokenRequests(); got < 2 || got > 3 {
		t.Errorf("token requests = %d, want 2 (or 3 at most): one refresh for everyone", got)
	}
}

// runLoad makes total calls from concurrency goroutines and returns how many
// failed. progress, when set, is called after each call with the count done.
func runLoad(t *testing.T, c *wxacode.Client, total, concurrency int, progress func(done int)) int {
	t.Helper()
	var next, done, failed atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				img, err := c.GetUnlimited(context.Background(), wxacode.Request{Scene: "n=" + strconv.FormatInt(i, 10)})
				if err != nil || len(img) == 0 {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("request %d: %v", i, err) })
				}
				if progress != nil {
					progress(int(done.Add(1)))
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load())
}

// TestErrorsAreClassified is a guard that the fault errors stay matchable.
func TestErrorsAreClassified(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := wxacode.NewClient(wxacode.StaticToken(faultToken), wxacode.WithBaseURL(srv.URL), wxacode.WithMaxAttempts(2),
		wxacode.WithRetryBackoff(time.Millisecond, time.Millisecond))
	_, err := c.GetUnlimited(context.Background(), wxacode.Request{Scene: "a=1"})
	var respErr *wxacode.ResponseError
	if !errors.As(err, &respErr) || respErr.StatusCode != 503 {
		t.Errorf("err = %v, want a *ResponseError with status 503", err)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("calls = %d, want 2: a 503 is temporary, so it is retried", got)
	}
}
