package wxacode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/go-wxacode/wxacode/internal/imagecheck"
)

// A Cache stores minted codes by key. Implementations must be safe for
// concurrent use. Get reports ok=false (and a nil error) for a miss.
//
// Get may return a slice the Cache keeps: the client copies it.
//
// A key (Request.Key) does not include the AppID: use one Cache per mini
// program. To share codes between machines, put any store behind these two
// methods (Redis, object storage).
type Cache interface {
	Get(ctx context.Context, key string) (img []byte, ok bool, err error)
	Put(ctx context.Context, key string, img []byte) error
}

// A CacheReleaser is a Cache that, when its Get misses, may hold the key
// for the caller while the code is minted, so that other processes wait
// for the code instead of minting it too (wxacoderedis.Cache does, with a
// lease in Redis). The Client calls Release, with the call's context
// values but not its cancellation, when the mint that followed such a
// miss ends without a Put: the call failed, or every caller left. Release
// is best effort and reports nothing; a Cache must also free a key held by
// a process that died (by expiry).
type CacheReleaser interface {
	Cache
	Release(ctx context.Context, key string)
}

// WithCache makes a Client look a code up in c before calling the API, store
// what it mints, and let concurrent calls for the same code share one API
// call. Clients honour it; NewStableTokenSource ignores it.
//
// A hit costs one Get in the caller's goroutine and one copy of the image.
// On a miss, callers of one key share a call that keeps the first
// caller's context values but no deadline of its own, and lives while
// someone waits for it: when the last caller waiting leaves (its context
// ends), the shared call is cancelled, so it sends no request and takes no
// turn of the rate limit if it had not yet. Callers still waiting get the
// image from one call.
//
// The cache is an optimisation, never a new way to fail: a Get error counts
// as a miss and a Put error still returns the image (both are logged at
// Warn with WithLogger); only complete images are stored, and an incomplete
// one returned by Get is a miss. The slice GetUnlimited returns belongs to
// the caller: the client copies what a Cache's Get returns (MemoryCache
// and DirCache already return copies, so theirs is handed on; a type that
// embeds one is copied like any other), and a Cache
// may keep the slice Put is given, which nobody changes (Put must not
// change it either).
//
// A nil c, or one holding a nil pointer ((*MemoryCache)(nil)), means no
// cache.
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

// ownedGets reports whether c is one of this package's caches, whose Get
// returns a slice nobody else holds (a copy, a file just read), so the
// client hands it on without copying it again. It asks for the exact
// type: a user's cache that embeds *MemoryCache may answer Get its own way.
func ownedGets(c Cache) bool {
	switch c.(type) {
	case *MemoryCache, *DirCache:
		return true
	}
	return false
}

// codeFlight is one lookup-and-mint that concurrent callers of a key
// share. It lives while someone waits for it: when the last caller leaves,
// its context is cancelled, so a call nobody waits for sends nothing more
// and takes no turn of the rate limit.
type codeFlight struct {
	done    chan struct{}
	cancel  context.CancelFunc // ends the flight's context
	callers int                // callers waiting now (guarded by Client.mu)
	img     []byte
	err     error
}

// cached returns the code for key: from the cache, or minted once however
// many callers miss at the same time. A hit is served in the caller's own
// goroutine, with its context. Each caller gets a copy, and returns as
// soon as its own ctx ends.
func (c *Client) cached(ctx context.Context, key string, body []byte) ([]byte, error) {
	if img, ok := c.lookup(ctx, key); ok {
		if ownedGets(c.opts.cache) {
			return img, nil
		}
		return bytes.Clone(img), nil // the cache may keep img: the caller's copy
	}
	c.mu.Lock()
	f := c.flights[key]
	if f == nil {
		// The flight keeps the first caller's values but not its deadline
		// or cancellation: others may wait longer. It ends when its last
		// caller leaves (leave).
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &codeFlight{done: make(chan struct{}), cancel: cancel}
		c.flights[key] = f
		go c.fill(fctx, key, body, f)
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
		c.leave(key, f)
		return nil, ctx.Err()
	}
}

// leave records that a caller of f stopped waiting. The last one to leave
// ends the flight, and the next caller of key starts a fresh one.
func (c *Client) leave(key string, f *codeFlight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.callers--
	if f.callers > 0 {
		return
	}
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	f.cancel()
}

// lookup returns the complete image the cache holds for key. An error or
// an incomplete image is a miss, logged at Warn.
func (c *Client) lookup(ctx context.Context, key string) ([]byte, bool) {
	img, ok, err := c.opts.cache.Get(ctx, key)
	switch {
	case err != nil:
		c.opts.log(ctx, slog.LevelWarn, "wxacode: cache get failed; calling the API", slog.String("key", key), slog.String("error", c.redact(err, "").Error()))
		return nil, false
	case !ok:
		return nil, false
	case imagecheck.Check(img) != "":
		c.opts.log(ctx, slog.LevelWarn, "wxacode: cache held an incomplete image; calling the API", slog.String("key", key))
		return nil, false
	}
	return img, true
}

// fill runs one flight: a cache lookup (a flight that ended since the
// caller's own lookup may have stored the code), else a call whose image is
// stored. An error is shared with the callers waiting now, never stored.
// Callers get copies of f.img, so the cache may keep the slice it is given.
func (c *Client) fill(ctx context.Context, key string, body []byte, f *codeFlight) {
	defer f.cancel()
	img, ok := c.lookup(ctx, key)
	if !ok {
		var err error
		img, err = c.mint(ctx, body)
		if err == nil {
			if err := c.opts.cache.Put(ctx, key, img); err != nil {
				c.opts.log(ctx, slog.LevelWarn, "wxacode: cache put failed", slog.String("key", key), slog.String("error", c.redact(err, "").Error()))
			}
		} else if r, ok := c.opts.cache.(CacheReleaser); ok {
			r.Release(context.WithoutCancel(ctx), key)
		}
		f.err = err
	}
	f.img = img
	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	close(f.done)
}
