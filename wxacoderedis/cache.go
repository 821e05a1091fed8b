package wxacoderedis

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache is a wxacode.Cache keeping codes in Redis, shared by every process
// that uses the same Redis and name. It is safe for concurrent use.
type Cache struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	guard  *guard
}

// NewCache returns a wxacode.Cache keeping codes in Redis under keys
// derived from name (use the AppID: a key does not include it), as
// wxacode:NAME:code:KEY. Codes never expire unless WithTTL says so. While
// Redis does not answer, every Get is a miss and nothing is stored (see
// the package doc).
//
// It honours WithTTL, WithTimeout, WithPause and WithLogger.
func NewCache(rdb redis.UniversalClient, name string, opts ...Option) *Cache {
	o := newOptions(opts)
	return &Cache{rdb: rdb, prefix: "wxacode:" + name + ":code:", ttl: o.ttl, guard: newGuard("cache", o)}
}

// errPaused is what Put returns while Redis is being left alone: nothing
// was stored.
var errPaused = errors.New("wxacoderedis: Redis failed a moment ago; the code was not stored")

// Get returns the code stored under key; a miss is nil, false, nil. While
// Redis is left alone after a failure, Get is a miss without an error, so
// that an outage is not reported once per call.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if c.guard.paused() {
		return nil, false, nil
	}
	img, err := call(ctx, c.guard, func(ctx context.Context) ([]byte, error) {
		img, err := c.rdb.Get(ctx, c.prefix+key).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, nil // a miss is an answer
		}
		return img, err
	})
	if err != nil {
		return nil, false, err
	}
	return img, img != nil, nil
}

// Put stores img under key, with the TTL of WithTTL if any. While Redis is
// left alone after a failure, Put stores nothing and says so at once.
func (c *Cache) Put(ctx context.Context, key string, img []byte) error {
	if c.guard.paused() {
		return errPaused
	}
	_, err := call(ctx, c.guard, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.rdb.Set(ctx, c.prefix+key, img, c.ttl).Err()
	})
	return err
}
