package wxacode

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		fail         func(t *testing.T, w http.ResponseWriter) // how the first failures answer
		failures     int
		maxAttempts  int
		wantRequests int64
		wantOK       bool
	}{
		{"transport error retried", hangUp, 2, 3, 3, true},
		{"5xx retried", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(503) }, 2, 3, 3, true},
		{"errcode -1 retried", func(t *testing.T, w http.ResponseWriter) { writeErr(w, -1, "system error") }, 2, 3, 3, true},
		{"attempts run out", func(t *testing.T, w http.ResponseWriter) { writeErr(w, -1, "system error") }, 5, 3, 3, false},
		{"one attempt means no retry", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(502) }, 1, 1, 1, false},
		{"invalid scene not retried", func(t *testing.T, w http.ResponseWriter) { writeErr(w, 40129, "invalid scene") }, 1, 3, 1, false},
		{"quota not retried", func(t *testing.T, w http.ResponseWriter) { writeErr(w, 45009, "reach max api daily quota limit") }, 1, 3, 1, false},
		{"4xx html not retried", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(404) }, 1, 3, 1, false},
		{"oversized image not retried", func(t *testing.T, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-Length", "5000000")
			w.WriteHeader(200)
		}, 1, 3, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) <= int64(tc.failures) {
					tc.fail(t, w)
					return
				}
				writeImage(w, "image/jpeg", testJPEG(t))
			}, WithMaxAttempts(tc.maxAttempts))
			_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
			if (err == nil) != tc.wantOK {
				t.Errorf("err = %v, want success %v", err, tc.wantOK)
			}
			if got := requests.Load(); got != tc.wantRequests {
				t.Errorf("requests = %d, want %d", got, tc.wantRequests)
			}
		})
	}
}

// TestTokenRefreshIsNotAnAttempt: after a rejected token, the fresh one
// still gets every retry WithMaxAttempts allows.
func TestTokenRefreshIsNotAnAttempt(t *testing.T) {
	ts := &recordingInvalidator{tokens: []string{"old", "new"}}
	var requests atomic.Int64
	c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) {
		switch requests.Add(1) {
		case 1:
			writeErr(w, CodeAccessTokenExpired, "access_token expired")
		case 2:
			writeErr(w, CodeSystemBusy, "system error")
		default:
			writeImage(w, "image/jpeg", testJPEG(t))
		}
	}, WithMaxAttempts(2))
	if _, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"}); err != nil {
		t.Fatalf("err = %v, want success: refresh, then one retry of -1", err)
	}
	if got := requests.Load(); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

func TestBackoffGrowsAndIsJittered(t *testing.T) {
	o := newOptions([]Option{WithRetryBackoff(100*time.Millisecond, time.Second)})
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := o.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff(%d) gave the same wait 50 times: no jitter", attempt)
		}
	}
}

// TestCancelWhileWaitingToRetry: the backoff is an hour, so only ctx can end
// the wait.
func TestCancelWhileWaitingToRetry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, -1, "system error")
		cancel()
	}, WithRetryBackoff(time.Hour, time.Hour))
	done := make(chan error, 1)
	go func() {
		_, err := c.GetUnlimited(ctx, Request{Scene: "a=1"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GetUnlimited still waiting for its retry after ctx was cancelled")
	}
}
