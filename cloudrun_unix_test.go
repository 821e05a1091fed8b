//go:build unix

package wxacode

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCloudbaseTokenFIFO: a FIFO at the token path (or a hung mount) never
// blocks Token past its ctx, nor holds a lock that blocks the next call.
func TestCloudbaseTokenFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloudbase_access_token")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	ts := NewCloudbaseTokenSource(path)
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := ts.Token(ctx)
		cancel()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("call %d: Token took %v with a 100 ms deadline", i, d)
		}
		if err == nil {
			t.Errorf("call %d: a FIFO gave a token", i)
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("call %d: err = %v, want the deadline or 'not a regular file'", i, err)
		}
	}
}
