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

// TestCacheLease: the first Get to miss a code holds it for its process;
// a Get of another process waits for the code instead of missing, and
// gets it once it is Put; Release lets a waiter take the code over at
// once; a lease whose holder died ends by expiry, and the waiter takes it
// over.
func TestCacheLease(t *testing.T) {
	srv := startRedis(t)
	rdb, _ := newRDB(t, srv.addr)
	ctx := context.Background()
	img := []byte("\xff\xd8\xff\xe0 an image \xff\xd9")
	a, b := NewCache(rdb, "wxapp"), NewCache(rdb, "wxapp")

	type got struct {
		img []byte
		ok  bool
		err error
		d   time.Duration
	}
	getAsync := func(c *Cache, key string) <-chan got {
		ch := make(chan got, 1)
		go func() {
			start := time.Now()
			img, ok, err := c.Get(ctx, key)
			ch <- got{img, ok, err, time.Since(start)}
		}()
		return ch
	}

	t.Run("put", func(t *testing.T) {
		if _, ok, err := a.Get(ctx, "k1"); ok || err != nil {
			t.Fatalf("first Get: ok %v, err %v; want a miss", ok, err)
		}
		if _, ok, err := a.Get(ctx, "k1"); ok || err != nil {
			t.Fatalf("the holder's second Get: ok %v, err %v; want a miss at once", ok, err)
		}
		waiting := getAsync(b, "k1")
		time.Sleep(100 * time.Millisecond)
		select {
		case g := <-waiting:
			t.Fatalf("another process's Get returned %v, %v while the code was being minted; want it to wait", g.ok, g.err)
		default:
		}
		if err := a.Put(ctx, "k1", img); err != nil {
			t.Fatal(err)
		}
		if g := <-waiting; !g.ok || g.err != nil || !bytes.Equal(g.img, img) {
			t.Errorf("the waiter got %q, %v, %v; want the code", g.img, g.ok, g.err)
		}
	})
	t.Run("release", func(t *testing.T) {
		if _, ok, _ := a.Get(ctx, "k2"); ok {
			t.Fatal("hit")
		}
		waiting := getAsync(b, "k2")
		time.Sleep(100 * time.Millisecond)
		a.Release(ctx, "k2")
		g := <-waiting
		if g.ok || g.err != nil || g.d > 2*time.Second {
			t.Errorf("the waiter after Release: ok %v, err %v after %v; want a miss (it mints) soon", g.ok, g.err, g.d)
		}
		if holder, _ := rdb.Get(ctx, "wxacode:wxapp:lease:k2").Result(); holder != b.id {
			t.Errorf("lease held by %q, want the waiter that took it over (%q)", holder, b.id)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		// a holder that died: its lease ends by itself
		if err := rdb.Set(ctx, "wxacode:wxapp:lease:k3", "dead", 300*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		r := <-getAsync(b, "k3")
		if r.ok || r.err != nil || r.d < 250*time.Millisecond || r.d > 3*time.Second {
			t.Fatalf("Get of a code whose holder died: ok %v, err %v after %v; want a miss once the lease ends (300 ms)", r.ok, r.err, r.d)
		}
		if holder, _ := rdb.Get(ctx, "wxacode:wxapp:lease:k3").Result(); holder != b.id {
			t.Errorf("lease held by %q after expiry, want the waiter (%q)", holder, b.id)
		}
	})
}
