// Package queue is the orchestrator's bounded FIFO of image requests. Waiting requests
// have 1-based positions; a full queue refuses new ones at once (ErrFull, which the server
// maps to ResourceExhausted / HTTP 429). The request being served is not in the queue.
package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrFull is returned by Push when the queue holds its capacity.
var ErrFull = errors.New("the image queue is full")

// Queue is a bounded FIFO of ids. It is safe for concurrent use.
type Queue struct {
	mu       sync.Mutex
	capacity int
	ids      []string
	// ready is closed and replaced whenever the queue changes, to wake waiters.
	ready chan struct{}
	// onChange is called after every change with the ids in order, outside mu but under
	// notifyMu, so that snapshots arrive in the order of the changes.
	onChange func(ids []string)
	notifyMu sync.Mutex
}

// New returns a queue holding at most capacity ids (at least 1). onChange, if not nil, is
// called after each change with a snapshot of the waiting ids in order; it may read the
// queue but must not change it.
func New(capacity int, onChange func(ids []string)) *Queue {
	if capacity < 1 {
		capacity = 1
	}
	return &Queue{capacity: capacity, ready: make(chan struct{}), onChange: onChange}
}

// Capacity returns the bound.
func (q *Queue) Capacity() int { return q.capacity }

// Push appends id and returns its 1-based position, or ErrFull.
func (q *Queue) Push(id string) (int, error) {
	q.mu.Lock()
	if len(q.ids) >= q.capacity {
		n := len(q.ids)
		q.mu.Unlock()
		return 0, fmt.Errorf("%w (%d waiting, capacity %d)", ErrFull, n, q.capacity)
	}
	q.ids = append(q.ids, id)
	pos := len(q.ids)
	q.changedAndUnlock()
	return pos, nil
}

// PushFront puts ids at the head of the queue, in their order, even past its capacity:
// the jobs a previous orchestrator accepted, restored on a restart or a failover, keep
// their place ahead of any submitted since. New ones are refused (ErrFull) until the
// queue is back under its capacity.
func (q *Queue) PushFront(ids ...string) {
	if len(ids) == 0 {
		return
	}
	q.mu.Lock()
	q.ids = append(append(make([]string, 0, len(ids)+len(q.ids)), ids...), q.ids...)
	q.changedAndUnlock()
}

// Pop waits for the first id and removes it. It returns ctx's error when ctx ends first.
func (q *Queue) Pop(ctx context.Context) (string, error) {
	for {
		q.mu.Lock()
		if len(q.ids) > 0 {
			id := q.ids[0]
			q.ids = q.ids[1:]
			q.changedAndUnlock()
			return id, nil
		}
		ready := q.ready
		q.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// Remove takes id out of the queue and reports whether it was there.
func (q *Queue) Remove(id string) bool {
	q.mu.Lock()
	for i, x := range q.ids {
		if x == id {
			q.ids = append(q.ids[:i:i], q.ids[i+1:]...)
			q.changedAndUnlock()
			return true
		}
	}
	q.mu.Unlock()
	return false
}

// Position returns id's 1-based position, or 0 when it is not waiting.
func (q *Queue) Position(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.ids {
		if x == id {
			return i + 1
		}
	}
	return 0
}

// Len returns the number of waiting ids.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ids)
}

// changedAndUnlock wakes waiters, releases mu and reports the change in order.
func (q *Queue) changedAndUnlock() {
	close(q.ready)
	q.ready = make(chan struct{})
	if q.onChange == nil {
		q.mu.Unlock()
		return
	}
	snap := append([]string(nil), q.ids...)
	q.notifyMu.Lock()
	q.mu.Unlock()
	defer q.notifyMu.Unlock()
	q.onChange(snap)
}
