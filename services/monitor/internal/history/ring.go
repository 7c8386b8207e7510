// Package history keeps the most recent snapshots in a fixed-size ring —
// by default the last five minutes at one per second — for timeline charts.
package history

import (
	"sync"
	"time"
)

// Default covers five minutes at one snapshot per second.
const (
	DefaultStep     = time.Second
	DefaultCapacity = 300
)

// Entry is one recorded value and when it was taken.
type Entry[T any] struct {
	Time  time.Time
	Value T
}

// Ring holds the newest Capacity entries; adding to a full ring drops the
// oldest. Safe for concurrent use.
type Ring[T any] struct {
	mu    sync.RWMutex
	buf   []Entry[T]
	start int // index of the oldest entry
	n     int
}

// NewRing returns an empty ring holding up to capacity entries (at least 1).
func NewRing[T any](capacity int) *Ring[T] {
	return &Ring[T]{buf: make([]Entry[T], max(capacity, 1))}
}

// Add records v taken at t. Entries are expected in time order; one older
// than the newest is dropped so the ring stays ordered.
func (r *Ring[T]) Add(t time.Time, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n > 0 && t.Before(r.buf[(r.start+r.n-1)%len(r.buf)].Time) {
		return
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = Entry[T]{t, v}
		r.n++
		return
	}
	r.buf[r.start] = Entry[T]{t, v}
	r.start = (r.start + 1) % len(r.buf)
}

// Since returns the entries taken after since, oldest first. A zero since
// returns everything.
func (r *Ring[T]) Since(since time.Time) []Entry[T] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	// Entries are ordered, so find the first one in range by bisection.
	lo, hi := 0, r.n
	for lo < hi {
		mid := (lo + hi) / 2
		if !r.at(mid).Time.After(since) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	out := make([]Entry[T], 0, r.n-lo)
	for i := lo; i < r.n; i++ {
		out = append(out, r.at(i))
	}
	return out
}

// Latest returns the newest entry, if any.
func (r *Ring[T]) Latest() (Entry[T], bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.n == 0 {
		return Entry[T]{}, false
	}
	return r.at(r.n - 1), true
}

// Len is the number of entries held.
func (r *Ring[T]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Cap is the most entries the ring holds.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// at returns the i-th oldest entry; r.mu is held.
func (r *Ring[T]) at(i int) Entry[T] { return r.buf[(r.start+i)%len(r.buf)] }
