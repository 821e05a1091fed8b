package wxacode

import (
	"bytes"
	"container/list"
	"context"
	"sync"
)

// MemoryCache is a Cache in memory: least recently used (by Get or Put)
// evicted first, never more than its maximum of image data in all. It
// copies what it stores and what it returns. It is safe for concurrent use.
type MemoryCache struct {
	max int64

	mu    sync.Mutex
	size  int64                    // bytes of image data held
	order *list.List               // of *memoryEntry, most recently used first
	byKey map[string]*list.Element // into order
}

type memoryEntry struct {
	key string
	img []byte
}

// NewMemoryCache keeps codes in memory, least recently used evicted first,
// up to maxBytes of image data in all.
func NewMemoryCache(maxBytes int64) *MemoryCache {
	return &MemoryCache{max: maxBytes, order: list.New(), byKey: make(map[string]*list.Element)}
}

// Get returns a copy of the image stored under key, and marks it used.
func (m *MemoryCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[key]
	if !ok {
		return nil, false, nil
	}
	m.order.MoveToFront(e)
	return bytes.Clone(e.Value.(*memoryEntry).img), true, nil
}

// Put stores a copy of img under key, evicting the least recently used
// images until it fits. An image larger than the cache's maximum is not
// stored and evicts nothing.
func (m *MemoryCache) Put(_ context.Context, key string, img []byte) error {
	n := int64(len(img))
	if n > m.max {
		return nil
	}
	img = bytes.Clone(img)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byKey[key]; ok {
		m.size -= int64(len(e.Value.(*memoryEntry).img))
		m.order.Remove(e)
		delete(m.byKey, key)
	}
	for m.size+n > m.max {
		oldest := m.order.Back()
		old := oldest.Value.(*memoryEntry)
		m.order.Remove(oldest)
		delete(m.byKey, old.key)
		m.size -= int64(len(old.img))
	}
	m.byKey[key] = m.order.PushFront(&memoryEntry{key: key, img: img})
	m.size += n
	return nil
}
