package server

import "sync"

// mailbox hands the latest value from a producer that must not block (the engine's output
// reader) to a consumer that may (a gRPC stream). Values the consumer has not taken yet are
// replaced by newer ones: a slow client sees fewer updates, never stale ones, and never slows
// the engine.
type mailbox[T any] struct {
	mu     sync.Mutex
	v      T
	has    bool
	notify chan struct{}
}

func newMailbox[T any]() *mailbox[T] { return &mailbox[T]{notify: make(chan struct{}, 1)} }

// put stores v and wakes the consumer.
func (m *mailbox[T]) put(v T) {
	m.mu.Lock()
	m.v, m.has = v, true
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// take returns the value stored since the last take, if any.
func (m *mailbox[T]) take() (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.v, m.has
	var zero T
	m.v, m.has = zero, false
	return v, ok
}
