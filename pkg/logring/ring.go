package logring

import (
	"errors"
	"sync"
)

// ErrClosed is returned by Cursor.Next once the ring is closed and the cursor
// has read everything that was appended before.
var ErrClosed = errors.New("logring: closed")

// Ring holds the most recent entries, up to a fixed capacity. Every appended
// entry gets a sequence number, starting at 1 and increasing by one. It is safe
// for concurrent use.
type Ring[T any] struct {
	mu      sync.Mutex
	buf     []T
	next    uint64 // sequence number of the next append
	count   int    // entries held, at most len(buf)
	wake    chan struct{}
	waiting bool // someone holds wake: replace it on the next append
	closed  bool
}

// New returns an empty ring holding at most capacity entries (at least 1).
func New[T any](capacity int) *Ring[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &Ring[T]{buf: make([]T, capacity), next: 1, wake: make(chan struct{})}
}

// Cap returns the capacity.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Len returns how many entries the ring holds.
func (r *Ring[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Append adds v, evicting the oldest entry when full, and wakes the readers.
// It never blocks on readers. It returns v's sequence number, or 0 when the
// ring is closed (v is then dropped).
func (r *Ring[T]) Append(v T) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0
	}
	seq := r.next
	r.buf[seq%uint64(len(r.buf))] = v
	r.next++
	if r.count < len(r.buf) {
		r.count++
	}
	if r.waiting {
		close(r.wake)
		r.wake = make(chan struct{})
		r.waiting = false
	}
	return seq
}

// NextSeq returns the sequence number the next Append will get.
func (r *Ring[T]) NextSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// Tail returns up to n of the most recent entries, oldest first.
func (r *Ring[T]) Tail(n int) []T {
	return r.TailSince(0, n)
}

// TailSince returns up to n of the most recent entries whose sequence number is
// at least seq, oldest first.
func (r *Ring[T]) TailSince(seq uint64, n int) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.oldest()
	if seq > first {
		first = seq
	}
	if first >= r.next || n <= 0 {
		return nil
	}
	if avail := r.next - first; uint64(n) > avail {
		n = int(avail)
	}
	out := make([]T, 0, n)
	for s := r.next - uint64(n); s < r.next; s++ {
		out = append(out, r.buf[s%uint64(len(r.buf))])
	}
	return out
}

// Close wakes all readers; they drain what is held and then get ErrClosed.
// Appends after Close are dropped. Close is idempotent.
func (r *Ring[T]) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	close(r.wake)
}

// oldest returns the sequence number of the oldest entry held (== next when
// empty). r.mu must be held.
func (r *Ring[T]) oldest() uint64 {
	return r.next - uint64(r.count)
}
