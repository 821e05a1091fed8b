package wxacode

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/go-wxacode/wxacode/internal/wait"
)

// retry calls do until it succeeds or fails for good. A failure that may
// pass (isRetryable) is tried again, up to o.maxAttempts attempts in all,
// after a backoff that ends early, with ctx's error, when ctx ends: so a
// cancelled call always ends with ctx's error, whichever answer came first.
// Each retry is logged at Debug as msg. It serves both GetUnlimited and the
// token fetch.
func retry[T any](ctx context.Context, o *options, msg string, do func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := do()
		if err == nil || attempt >= o.maxAttempts || !isRetryable(err) {
			return v, err
		}
		o.log(ctx, slog.LevelDebug, msg, slog.Int("attempt", attempt), slog.String("error", err.Error()))
		if err := wait.For(ctx, o.backoff(attempt)); err != nil {
			var zero T
			return zero, err
		}
	}
}

// isRetryable reports whether err may pass if tried again: a transport
// error, HTTP 5xx, errcode -1 or 85113. Validation errors, other API
// errors, redirects and oversized bodies are final, and so are a
// TokenSource's and a Limiter's errors: a source retries its own requests,
// and retrying it here would multiply them (3 attempts of a source that
// itself makes 3 would be 9 requests to a failing token endpoint). Those
// two are checked first, since they may wrap a retryable error.
func isRetryable(err error) bool {
	var tokErr *TokenError
	var limErr *LimiterError
	if errors.As(err, &tokErr) || errors.As(err, &limErr) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.temporary()
	}
	var respErr *ResponseError
	if errors.As(err, &respErr) {
		return respErr.StatusCode >= 500
	}
	var valErr *ValidationError
	if errors.As(err, &valErr) {
		return false
	}
	// What is left failed in the transport: refused or reset connections,
	// timeouts of one exchange, bodies cut short.
	return true
}

// backoff returns the wait after attempt number attempt: backoffMin doubled
// per attempt, capped at backoffMax, jittered to between half and all of it
// so that many clients do not retry in step.
func (o *options) backoff(attempt int) time.Duration {
	d := o.backoffMin
	for i := 1; i < attempt && d < o.backoffMax; i++ {
		d *= 2
	}
	d = min(d, o.backoffMax)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
