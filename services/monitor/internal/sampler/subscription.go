package sampler

import (
	"context"
	"sync"
)

// Update is one sampled value as a subscriber receives it.
type Update[T any] struct {
	Value T
	// Seq numbers the sampler's values from 1; consecutive updates of a
	// subscriber that keeps up have consecutive Seq.
	Seq uint64
	// Missed is how many values this subscriber skipped since its
	// previous update because it had not taken them in time.
	Missed uint64
}

// Subscription receives a sampler's values. Next must not be called from
// more than one goroutine at a time; Cancel may be called from any.
type Subscription[T any] struct {
	hub      *Hub[T]
	sampler  *sampler[T]
	notify   chan struct{} // capacity 1: "a value is pending"
	done     chan struct{} // closed by Cancel or Hub.Close
	doneOnce sync.Once

	mu         sync.Mutex
	pending    Update[T]
	hasPending bool
	missed     uint64

	// send and sender are set on a subscription made by SubscribeSend.
	send   func(Update[T]) error
	sender *sendState
}

func newSubscription[T any](h *Hub[T], s *sampler[T], send func(Update[T]) error) *Subscription[T] {
	sub := &Subscription[T]{
		hub:     h,
		sampler: s,
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		send:    send,
	}
	if send != nil {
		sub.sender = &sendState{failed: make(chan struct{})}
	}
	return sub
}

// onPass reports whether the sampler's pass sends the subscription its
// values (a send subscription not moved off it).
func (s *Subscription[T]) onPass() bool {
	return s.sender != nil && !s.sender.slow.Load()
}

// deliver hands a value over without blocking. An untaken value is
// replaced and counted as missed.
func (s *Subscription[T]) deliver(v T, seq uint64) {
	s.mu.Lock()
	if s.hasPending {
		s.missed++
		s.hub.missed.Add(1)
	}
	s.pending = Update[T]{Value: v, Seq: seq}
	s.hasPending = true
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next waits for the next value. It fails with ctx's error, or with
// ErrClosed once the subscription is cancelled or the hub closed. A
// subscription made by SubscribeSend is not read with Next: ErrNotReader.
func (s *Subscription[T]) Next(ctx context.Context) (Update[T], error) {
	if s.sender != nil {
		return Update[T]{}, ErrNotReader
	}
	for {
		s.mu.Lock()
		if s.hasPending {
			u := s.pending
			u.Missed = s.missed
			var zero Update[T]
			s.pending, s.hasPending, s.missed = zero, false, 0
			s.mu.Unlock()
			return u, nil
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-s.done:
			return Update[T]{}, ErrClosed
		case <-ctx.Done():
			return Update[T]{}, ctx.Err()
		}
	}
}

// Cancel unsubscribes; the sampler stops when its last subscriber leaves.
// A send subscription's send in flight is waited for, and none is made
// after Cancel returns. Safe to call more than once.
func (s *Subscription[T]) Cancel() {
	s.hub.unsubscribe(s)
	s.close()
	s.stopSending()
}

func (s *Subscription[T]) close() {
	s.doneOnce.Do(func() { close(s.done) })
}
