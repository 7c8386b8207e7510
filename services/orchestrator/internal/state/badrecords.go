package state

import "sync"

// badRecords are the distinct records a backend could not decode (skipped by the listings),
// counted once each.
type badRecords struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// add records id and reports whether it is new (so that the caller logs it once).
func (b *badRecords) add(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ids == nil {
		b.ids = map[string]struct{}{}
	}
	_, seen := b.ids[id]
	b.ids[id] = struct{}{}
	return !seen
}

// count is the number of distinct bad records.
func (b *badRecords) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ids)
}
