package wxacoderedis

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

func TestCacheKeysAndTTL(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	ctx := context.Background()
	key := wxacode.Request{Scene: "id=1"}.Key()
	img := []byte("\xff\xd8\xff\xe0 an image \xff\xd9")

	c := NewCache(rdb, "wxapp")
	if got, ok, err := c.Get(ctx, key); got != nil || ok || err != nil {
		t.Errorf("Get of a missing code = %q, %v, %v; want nil, false, nil", got, ok, err)
	}
	if err := c.Put(ctx, key, img); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(ctx, key); !ok || err != nil || !bytes.Equal(got, img) {
		t.Errorf("Get after Put = %q, %v, %v", got, ok, err)
	}
	if ttl, err := rdb.TTL(ctx, "wxacode:wxapp:code:"+key).Result(); err != nil || ttl != -1 {
		t.Errorf("TTL of wxacode:wxapp:code:KEY = %v, %v; want no expiry (-1)", ttl, err)
	}
	if got, ok, _ := NewCache(rdb, "other").Get(ctx, key); ok || got != nil {
		t.Error("another name sees the code")
	}

	hot := NewCache(rdb, "hot", WithTTL(time.Hour))
	if err := hot.Put(ctx, key, img); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.TTL(ctx, "wxacode:hot:code:"+key).Result(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("TTL with WithTTL(time.Hour) = %v", ttl)
	}
}

// TestCacheRedisDown: refused or hung, the cache is a miss and a failed
// put within about 250 ms, and the Client mints on; Redis is left alone
// for a second after a failure.
func TestCacheRedisDown(t *testing.T) {
	fake := wxacodetest.NewServer()
	t.Cleanup(fake.Close)
	hung := startRedis(t)
	for _, tc := range []struct {
		name string
		addr string
		prep func(t *testing.T, c *Cache)
	}{
		{"refused", "127.0.0.1:" + freePort(t), func(*testing.T, *Cache) {}},
		{"hung", hung.addr, func(t *testing.T, c *Cache) {
			if _, _, err := c.Get(context.Background(), "warm"); err != nil {
				t.Fatal(err)
			}
			hung.stop(t)
			t.Cleanup(func() { hung.cont(t) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, calls := newRDB(t, tc.addr)
			logger, logs := jsonLogger()
			cache := NewCache(rdb, "wxapp", WithLogger(logger))
			tc.prep(t, cache)
			client := wxacode.NewClient(wxacode.StaticToken(fake.Token()), wxacode.WithBaseURL(fake.URL), wxacode.WithCache(cache))
			key := wxacode.Request{Scene: "x"}.Key()

			start := time.Now()
			if _, ok, err := cache.Get(context.Background(), key); ok || err == nil {
				t.Errorf("Get with Redis down: ok %v, err %v; want a miss with the error", ok, err)
			}
			if err := cache.Put(context.Background(), key, []byte("img")); err == nil {
				t.Error("Put with Redis down reported no error")
			}
			before := calls.n.Load()
			for i := range 20 {
				if _, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "s" + string(rune('a'+i))}); err != nil {
					t.Fatalf("GetUnlimited with Redis down: %v", err)
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("a Get, a Put and 20 calls took %v with Redis down, want well under a second", d)
			}
			if got := calls.n.Load() - before; got > 1 {
				t.Errorf("Redis asked %d times in the pause after a failure", got)
			}
			wantOneWarning(t, logs)
		})
	}
}
