package wxacode

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// shouldRetry reports whether err, the outcome of attempt number attempt
// (from 1), is worth another attempt: a transport error, HTTP 5xx or errcode
// -1, while attempts remain. Validation errors, other API errors and
// oversized bodies are final. Whether ctx has ended is left to wait, so a
// cancelled call always ends with ctx's error, whichever answer came first.
func (o *options) shouldRetry(err error, attempt int) bool {
	return attempt < o.maxAttempts && isRetryable(err)
}

// isRetryable classifies err regardless of attempts and ctx.
func isRetryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var respErr *ResponseError
	if errors.As(err, &respErr) {
		return respErr.Temporary()
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

// wait sleeps the backoff after attempt, or returns ctx's error as soon as
// ctx ends.
func (o *options) wait(ctx context.Context, attempt int) error {
	return sleepContext(ctx, o.backoff(attempt))
}
