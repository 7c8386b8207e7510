package logring

import "context"

// Entry is one entry read through a Cursor.
type Entry[T any] struct {
	// Seq is the entry's sequence number in the ring.
	Seq uint64
	// Missed is how many entries this cursor lost just before this one
	// because it fell more than the ring's capacity behind.
	Missed uint64
	Value  T
}

// Cursor follows a ring from a position. It holds no resources in the ring:
// an abandoned cursor needs no unsubscribe. A Cursor is not safe for
// concurrent use by several goroutines; give each reader its own.
type Cursor[T any] struct {
	r   *Ring[T]
	seq uint64
}

// Subscribe returns a cursor that first yields up to backlog of the most recent
// entries already held and then every new entry.
func (r *Ring[T]) Subscribe(backlog int) *Cursor[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.next
	if backlog > 0 {
		if uint64(backlog) >= uint64(r.count) {
			start = r.oldest()
		} else {
			start = r.next - uint64(backlog)
		}
	}
	return &Cursor[T]{r: r, seq: start}
}

// Next returns the next entry, waiting for one if needed. It returns
// ctx.Err() when ctx ends first, and ErrClosed once the ring is closed and
// drained.
func (c *Cursor[T]) Next(ctx context.Context) (Entry[T], error) {
	for {
		e, ok, wake, closed := c.poll()
		if ok {
			return e, nil
		}
		if closed {
			return e, ErrClosed
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Entry[T]{}, ctx.Err()
		}
	}
}

// TryNext returns the next entry if one is available, without waiting.
func (c *Cursor[T]) TryNext() (Entry[T], bool) {
	e, ok, _, _ := c.poll()
	return e, ok
}

// Lag returns how many entries are available to this cursor right now
// (not counting entries it has already lost).
func (c *Cursor[T]) Lag() uint64 {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	first := max(c.seq, c.r.oldest())
	return c.r.next - first
}

func (c *Cursor[T]) poll() (e Entry[T], ok bool, wake <-chan struct{}, closed bool) {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.oldest(); c.seq < old {
		e.Missed = old - c.seq
		c.seq = old
	}
	if c.seq < r.next {
		e.Seq = c.seq
		e.Value = r.buf[c.seq%uint64(len(r.buf))]
		c.seq++
		return e, true, nil, false
	}
	if r.closed {
		return Entry[T]{}, false, nil, true
	}
	r.waiting = true
	return Entry[T]{}, false, r.wake, false
}
