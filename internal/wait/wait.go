// Package wait sleeps on a context, for the library's backoff and rate
// limit and the command's quota pauses.
package wait

import (
	"context"
	"time"
)

// For waits d, or returns ctx's error as soon as ctx ends. A d of zero or
// less returns ctx's error (nil while ctx lives) at once.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
