package wxacode

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func TestMemoryCache(t *testing.T) {
	ctx := context.Background()
	img := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	has := func(m *MemoryCache, key string) bool {
		_, ok, _ := m.Get(ctx, key)
		return ok
	}

	t.Run("least recently used goes first", func(t *testing.T) {
		m := NewMemoryCache(300)
		_ = m.Put(ctx, "a", img(100, 'a'))
		_ = m.Put(ctx, "b", img(100, 'b'))
		_ = m.Put(ctx, "c", img(100, 'c'))
		has(m, "a")                        // a used: b is now the oldest
		_ = m.Put(ctx, "d", img(100, 'd')) // evicts b
		if !has(m, "a") || has(m, "b") || !has(m, "c") || !has(m, "d") {
			t.Error("Get did not count as a use")
		}
		_ = m.Put(ctx, "c", img(100, 'C')) // c used by Put: a is now the oldest
		_ = m.Put(ctx, "e", img(100, 'e'))
		if has(m, "a") || !has(m, "c") {
			t.Error("Put did not count as a use")
		}
		if got, _, _ := m.Get(ctx, "c"); !bytes.Equal(got, img(100, 'C')) {
			t.Error("Put did not replace")
		}
	})
	t.Run("too large is not stored and evicts nothing", func(t *testing.T) {
		m := NewMemoryCache(300)
		_ = m.Put(ctx, "a", img(200, 'a'))
		if err := m.Put(ctx, "big", img(301, 'x')); err != nil || has(m, "big") || !has(m, "a") {
			t.Errorf("an image over the maximum: err %v, stored %v, evicted %v", err, has(m, "big"), !has(m, "a"))
		}
	})
	t.Run("copies in and out", func(t *testing.T) {
		m := NewMemoryCache(300)
		in := img(10, 'a')
		_ = m.Put(ctx, "a", in)
		clear(in)
		out, _, _ := m.Get(ctx, "a")
		clear(out)
		if again, _, _ := m.Get(ctx, "a"); !bytes.Equal(again, img(10, 'a')) {
			t.Error("the cache shares slices with its callers")
		}
	})
	t.Run("never over the maximum, under load", func(t *testing.T) {
		const max = 10_000
		m := NewMemoryCache(max)
		var wg sync.WaitGroup
		for g := range 200 {
			wg.Go(func() {
				for i := range 200 {
					key := fmt.Sprint(rand.IntN(50))
					if i%3 == 0 {
						m.Get(ctx, key)
						continue
					}
					_ = m.Put(ctx, key, img(1+rand.IntN(3000), byte(g)))
					m.mu.Lock()
					size, sum := m.size, int64(0)
					for _, e := range m.byKey {
						sum += int64(len(e.Value.(*memoryEntry).img))
					}
					m.mu.Unlock()
					if size > max || size != sum {
						t.Errorf("holds %d bytes (counted %d), maximum %d", sum, size, max)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
