package wxacoderedis

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseTTL is how long a process that missed a code holds it for itself
// while it mints it: the others wait for the value that long at most. A
// holder that dies frees it by expiry.
const leaseTTL = 10 * time.Second

// Cache is a wxacode.Cache keeping codes in Redis, shared by every process
// that uses the same Redis and name. It is safe for concurrent use.
type Cache struct {
	rdb         redis.UniversalClient
	prefix      string // of a code's key
	leasePrefix string // of a lease's key
	id          string // this Cache, as a lease's holder
	ttl         time.Duration
	guard       *guard
	releaseS    *script

	slots chan struct{} // commands in flight: see maxCacheCommands

	mu    sync.Mutex
	waits map[string]*codeWait // codes this process waits for another to mint
}

// maxCacheCommands bounds a Cache's commands in flight. go-redis's pool
// holds 10 connections per CPU by default: a thousand callers missing at
// once would otherwise queue for connections inside the commands' time
// bound and take a busy pool for a dead Redis. Waiting for a slot is
// bounded by the caller's ctx only; a slot taken after Redis failed is
// given back unused.
const maxCacheCommands = 8

// codeWait is a wait for a code another process mints, shared by the
// callers of one process.
type codeWait struct {
	done chan struct{}
	img  []byte // nil: mint it here
	err  error
}

// NewCache returns a wxacode.Cache keeping codes in Redis under keys
// derived from name (use the AppID: a key does not include it), as
// wxacode:NAME:code:KEY. Codes never expire unless WithTTL says so.
//
// A code is minted once in the fleet, also when several processes miss it
// at the same moment: the first Get to miss takes a lease on the code
// (wxacode:NAME:lease:KEY, SET NX with a 10 s expiry) and returns a miss,
// so that its process mints the code; a Get of another process that finds
// the lease taken waits for the code (until the lease ends or its ctx
// does) instead of returning a miss. Put, and Release when the mint
// failed (wxacode.CacheReleaser), free the lease; a holder that dies frees
// it by expiry, and then one waiter takes it over.
//
// While Redis does not answer, every Get is a miss and nothing is stored
// (see the package doc). A write refused because Redis is full (OOM under
// maxmemory-policy noeviction) is a failed Put, logged once, not an
// outage: Gets go on.
//
// It honours WithTTL, WithTimeout, WithPause and WithLogger.
func NewCache(rdb redis.UniversalClient, name string, opts ...Option) *Cache {
	o := newOptions(opts)
	return &Cache{rdb: rdb, prefix: "wxacode:" + name + ":code:", leasePrefix: "wxacode:" + name + ":lease:",
		id: newID(), ttl: o.ttl, guard: newGuard("cache", rdb, o), releaseS: newScript(releaseLua),
		slots: make(chan struct{}, maxCacheCommands), waits: make(map[string]*codeWait)}
}

// errPaused is what Put returns while Redis is being left alone: nothing
// was stored.
var errPaused = errors.New("wxacoderedis: Redis failed a moment ago; the code was not stored")

// Get returns the code stored under key; a miss is nil, false, nil. When
// another process holds the code's lease, Get waits for it (see NewCache).
// While Redis is left alone after a failure, Get is a miss without an
// error, so that an outage is not reported once per call.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	u, ok, err := c.begin(ctx)
	if !ok {
		return nil, false, err
	}
	img, err := c.get(ctx, key)
	if err == nil && img == nil {
		var mine bool
		if mine, err = c.lease(ctx, key); err == nil && !mine {
			c.end(ctx, u, nil)
			return c.await(ctx, key)
		}
	}
	c.end(ctx, u, err)
	if err != nil {
		return nil, false, err
	}
	return img, img != nil, nil
}

// begin admits a use of Redis (see guard.admit) and takes a command slot.
// It reports false when Redis is left alone, with ctx's error if the
// caller left while waiting for a slot.
func (c *Cache) begin(ctx context.Context) (use, bool, error) {
	u, ok := c.guard.admit()
	if !ok {
		return u, false, nil
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		c.guard.report(ctx, u, ctx.Err()) // ends a probe; says nothing of Redis
		return u, false, ctx.Err()
	}
	if !c.guard.current(u) { // Redis failed while this caller waited
		<-c.slots
		c.guard.report(ctx, u, nil)
		return u, false, nil
	}
	return u, true, nil
}

// end gives the slot back and reports the use.
func (c *Cache) end(ctx context.Context, u use, err error) {
	<-c.slots
	c.guard.report(ctx, u, err)
}

// get reads a code; a miss is nil, nil.
func (c *Cache) get(ctx context.Context, key string) ([]byte, error) {
	return command(ctx, c.guard, c.rdb, func(ctx context.Context) ([]byte, error) {
		img, err := c.rdb.Get(ctx, c.prefix+key).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, nil // a miss is an answer
		}
		return img, err
	})
}

// lease takes the code's lease for this Cache, and reports whether it
// holds it (it took it, or held it already). A Redis too full to take it
// is no error: the code is minted here, as it would be without a Cache.
func (c *Cache) lease(ctx context.Context, key string) (bool, error) {
	holder, err := command(ctx, c.guard, c.rdb, func(ctx context.Context) (string, error) {
		h, err := c.rdb.Do(ctx, "SET", c.leasePrefix+key, c.id, "NX", "PX", leaseTTL.Milliseconds(), "GET").Text()
		if errors.Is(err, redis.Nil) {
			return c.id, nil // nobody held it: now this Cache does
		}
		return h, err
	})
	if isOOM(err) {
		c.guard.wrote(ctx, err)
		return true, nil
	}
	return err != nil || holder == c.id, err
}

// await waits for the code another process holds the lease of; callers of
// one process share one wait. It ends with the code, or a miss when the
// lease ended without one (and this process took it over), or ctx's
// error.
func (c *Cache) await(ctx context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	w := c.waits[key]
	if w == nil {
		w = &codeWait{done: make(chan struct{})}
		c.waits[key] = w
		go c.poll(context.WithoutCancel(ctx), key, w)
	}
	c.mu.Unlock()
	select {
	case <-w.done:
		return w.img, w.img != nil, w.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// poll looks for the code, more slowly as time passes (10 ms to 100 ms),
// and takes the lease over when its holder let it end without a code. It
// gives up after the lease's time and a second more: then the waiters
// mint.
func (c *Cache) poll(ctx context.Context, key string, w *codeWait) {
	defer func() {
		c.mu.Lock()
		delete(c.waits, key)
		c.mu.Unlock()
		close(w.done)
	}()
	deadline := time.Now().Add(leaseTTL + time.Second)
	for delay := 10 * time.Millisecond; time.Now().Before(deadline); delay = min(2*delay, 100*time.Millisecond) {
		_ = sleep(ctx, delay)
		u, ok, _ := c.begin(ctx)
		if !ok {
			return // Redis failed: mint here
		}
		img, err := c.get(ctx, key)
		mine := false
		if err == nil && img == nil {
			mine, err = c.lease(ctx, key)
		}
		c.end(ctx, u, err)
		if err != nil || img != nil || mine {
			w.img, w.err = img, err
			return
		}
	}
}

// Put stores img under key, with the TTL of WithTTL if any, and frees the
// code's lease. While Redis is left alone after a failure, Put stores
// nothing and says so at once.
func (c *Cache) Put(ctx context.Context, key string, img []byte) error {
	u, ok, err := c.begin(ctx)
	if !ok {
		return cmp.Or(err, errPaused)
	}
	_, err = command(ctx, c.guard, c.rdb, func(ctx context.Context) ([]redis.Cmder, error) {
		return c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, c.prefix+key, img, c.ttl)
			p.Del(ctx, c.leasePrefix+key) // waiters find the code first
			return nil
		})
	})
	if isOOM(err) { // Redis answered: full, not out
		c.end(ctx, u, nil)
		c.guard.wrote(ctx, err)
		return err
	}
	c.end(ctx, u, err)
	if err == nil {
		c.guard.wrote(ctx, nil)
	}
	return err
}

// releaseLua frees a lease if this Cache holds it.
const releaseLua = `#!lua flags=allow-oom
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// Release frees the lease this Cache took on key when its Get missed, so
// that a process waiting for the code takes it over at once rather than
// when the lease expires. The wxacode.Client calls it when a mint that
// followed a miss ends without a Put (wxacode.CacheReleaser). It is best
// effort: a lease not freed ends by itself.
func (c *Cache) Release(ctx context.Context, key string) {
	u, ok, _ := c.begin(ctx)
	if !ok {
		return
	}
	_, err := c.releaseS.run(ctx, c.guard, c.rdb, []string{c.leasePrefix + key}, c.id)
	c.end(ctx, u, err)
}
