package wxacode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/go-wxacode/wxacode/internal/imagecheck"
)

// A Cache stores minted codes by key. Implementations must be safe for
// concurrent use. Get reports ok=false (and a nil error) for a miss.
//
// A key (Request.Key) does not include the AppID: use one Cache per mini
// program. To share codes between machines, put any store behind these two
// methods (Redis, object storage).
type Cache interface {
	Get(ctx context.Context, key string) (img []byte, ok bool, err error)
	Put(ctx context.Context, key string, img []byte) error
}

// WithCache makes a Client look a code up in c before calling the API, store
// what it mints, and let concurrent calls for the same code share one API
// call. Clients honour it; NewStableTokenSource ignores it.
//
// The cache is an optimisation, never a new way to fail: a Get error counts
// as a miss and a Put error still returns the image (both are logged at
// Warn with WithLogger); only complete images are stored, and an incomplete
// one returned by Get is a miss. The client copies what it puts and what it
// gets, so the slice GetUnlimited returns belongs to the caller.
func WithCache(c Cache) Option {
	return func(o *options) { o.cache = c }
}

// Key identifies the code r mints: requests that send the same body (after
// defaults are left out, so Width 0 and Width 430 are the same code) have
// the same key. It is a short string of [0-9a-f] (32 characters, half of
// a SHA-256) usable as a file name or a Redis key.
func (r Request) Key() string {
	body, _ := r.body() // a struct of strings, numbers and bools always encodes
	return keyOf(body)
}

func keyOf(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

// sharedCallTimeout bounds a call shared by concurrent callers: it runs
// detached from any one caller's context, so something else must end it.
const sharedCallTimeout = 2 * time.Minute

// codeFlight is one lookup-or-mint that concurrent callers of a key share.
type codeFlight struct {
	done    chan struct{}
	callers int // how many calls share it (guarded by Client.mu)
	img     []byte
	err     error
}

// cached returns the code for key: from the cache, or minted once however
// many callers ask at the same time. Each caller gets a copy, and returns
// as soon as its own ctx ends.
func (c *Client) cached(ctx context.Context, key string, body []byte) ([]byte, error) {
	c.mu.Lock()
	f := c.flights[key]
	if f == nil {
		f = &codeFlight{done: make(chan struct{})}
		c.flights[key] = f
		go c.fill(context.WithoutCancel(ctx), key, body, f)
	}
	f.callers++
	c.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return bytes.Clone(f.img), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fill runs one flight: a cache lookup, else a call whose image is stored.
// An error is shared with the callers waiting now, never stored.
func (c *Client) fill(ctx context.Context, key string, body []byte, f *codeFlight) {
	ctx, cancel := context.WithTimeout(ctx, sharedCallTimeout)
	defer cancel()
	img, ok, err := c.opts.cache.Get(ctx, key)
	switch {
	case err != nil:
		c.opts.log(ctx, slog.LevelWarn, "wxacode: cache get failed; calling the API", slog.String("key", key), slog.String("error", c.redact(err, "").Error()))
	case ok && imagecheck.Check(img) == "":
		f.img = bytes.Clone(img)
	case ok:
		c.opts.log(ctx, slog.LevelWarn, "wxacode: cache held an incomplete image; calling the API", slog.String("key", key))
	}
	if f.img == nil {
		f.img, f.err = c.mint(ctx, body)
		if f.err == nil {
			if err := c.opts.cache.Put(ctx, key, bytes.Clone(f.img)); err != nil {
				c.opts.log(ctx, slog.LevelWarn, "wxacode: cache put failed", slog.String("key", key), slog.String("error", c.redact(err, "").Error()))
			}
		}
	}
	c.mu.Lock()
	delete(c.flights, key)
	c.mu.Unlock()
	close(f.done)
}
