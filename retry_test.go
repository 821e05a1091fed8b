package wxacode

import (
	"context"
	"errors"
	"fmt"
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

// TestTokenErrorsAreNotRetried: a failing TokenSource is asked once per
// call, whatever it wraps; a StableTokenSource retries its own requests, so
// a token endpoint answering 503 gets its 3 attempts, not 3 times 3.
func TestTokenErrorsAreNotRetried(t *testing.T) {
	t.Run("TokenFunc", func(t *testing.T) {
		var calls atomic.Int64
		// The source's error wraps what would be retried on its own: a
		// transport error and a 503.
		wrapped := &ResponseError{StatusCode: 503, Reason: "busy"}
		ts := TokenFunc(func(context.Context) (string, error) {
			calls.Add(1)
			return "", fmt.Errorf("token service: %w", wrapped)
		})
		var requests atomic.Int64
		c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }, WithMaxAttempts(5))
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		var tokErr *TokenError
		if !errors.As(err, &tokErr) || !errors.Is(err, wrapped) {
			t.Errorf("err = %v, want a *TokenError wrapping the source's error", err)
		}
		if got := calls.Load(); got != 1 {
			t.Errorf("TokenFunc called %d times for one call, want 1", got)
		}
		if got := requests.Load(); got != 0 {
			t.Errorf("%d requests sent without a token", got)
		}
	})
	t.Run("StableTokenSource", func(t *testing.T) {
		var tokenRequests atomic.Int64
		srv := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/cgi-bin/stable_token" {
				tokenRequests.Add(1)
				w.WriteHeader(503)
				return
			}
			t.Errorf("a code request was sent without a token")
		}))
		ts := NewStableTokenSource(testAppID, testSecret, WithBaseURL(srv.URL), fastRetries())
		c := NewClient(ts, WithBaseURL(srv.URL), fastRetries())
		_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
		var respErr *ResponseError
		if !errors.As(err, &respErr) || respErr.StatusCode != 503 {
			t.Errorf("err = %v, want a *TokenError wrapping the 503", err)
		}
		if got := tokenRequests.Load(); got != 3 {
			t.Errorf("token endpoint got %d requests for one call, want 3 (the source's own attempts)", got)
		}
	})
}

// TestLimiterErrorsAreFinal: an error from the Limiter that is not the
// context's ends the call: nothing sent, Wait not asked again.
func TestLimiterErrorsAreFinal(t *testing.T) {
	down := errors.New("limiter store down")
	l := &countingLimiter{err: down}
	var requests atomic.Int64
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }, WithLimiter(l), WithMaxAttempts(5))
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1"})
	var limErr *LimiterError
	if !errors.As(err, &limErr) || !errors.Is(err, down) {
		t.Errorf("err = %v, want a *LimiterError wrapping the limiter's error", err)
	}
	if got := l.calls.Load(); got != 1 {
		t.Errorf("Wait called %d times, want 1", got)
	}
	if got := requests.Load(); got != 0 {
		t.Errorf("%d requests sent past a failing limiter", got)
	}

	// The context's own error stays the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l2 := &countingLimiter{err: context.Canceled}
	c2, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }, WithLimiter(l2))
	if _, err := c2.GetUnlimited(ctx, Request{Scene: "a=1"}); !errors.Is(err, context.Canceled) || errors.As(err, &limErr) {
		t.Errorf("cancelled: err = %v, want context.Canceled, not a *LimiterError", err)
	}
}

// countingLimiter counts its Waits and answers err.
type countingLimiter struct {
	calls atomic.Int64
	err   error
}

func (l *countingLimiter) Wait(context.Context) error {
	l.calls.Add(1)
	return l.err
}

// TestLimiterOptionsReplaceEachOther: WithRateLimit and WithLimiter are one
// setting, the last given wins.
func TestLimiterOptionsReplaceEachOther(t *testing.T) {
	custom := &countingLimiter{}
	tests := []struct {
		name string
		opts []Option
		want string // "custom", "builtin" or "none"
	}{
		{"limiter after rate", []Option{WithRateLimit(10, time.Second), WithLimiter(custom)}, "custom"},
		{"rate after limiter", []Option{WithLimiter(custom), WithRateLimit(10, time.Second)}, "builtin"},
		{"no rate after limiter", []Option{WithLimiter(custom), WithRateLimit(0, time.Second)}, "none"},
		{"nil limiter", []Option{WithRateLimit(10, time.Second), WithLimiter(nil)}, "none"},
	}
	for _, tc := range tests {
		got := "none"
		switch NewClient(StaticToken("x"), tc.opts...).opts.limiter.(type) {
		case *countingLimiter:
			got = "custom"
		case *rateLimiter:
			got = "builtin"
		}
		if got != tc.want {
			t.Errorf("%s: limiter is %s, want %s", tc.name, got, tc.want)
		}
	}
}
