package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	if err := For(context.Background(), time.Millisecond); err != nil {
		t.Errorf("a short wait: %v", err)
	}
	if err := For(context.Background(), 0); err != nil {
		t.Errorf("no wait on a live context: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := For(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("no wait on a cancelled context: %v, want context.Canceled", err)
	}
	// An hour cut short by the context: returns with its error, at once
	// (the bound only catches a wait that ignored ctx).
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := For(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("For(ctx, 1h) = %v after %v, want the deadline at once", err, time.Since(start))
	}
}
