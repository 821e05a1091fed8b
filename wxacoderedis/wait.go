package wxacoderedis

import (
	"context"
	"time"
)

// sleep waits d, or returns ctx's error as soon as ctx ends (the core's
// internal wait.For: this module imports no internal package of another
// module, whose API may change under it). A d of zero or less returns
// ctx's error (nil while ctx lives) at once.
func sleep(ctx context.Context, d time.Duration) error {
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
