package sampler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// StallAfter is how long one send of the sampler's pass may take before its
// subscription is moved off the pass, to its own goroutine (Serve). A send
// that does not block takes microseconds; one that does waits for its
// receiver (a gRPC stream whose client does not read: its flow-control
// window and write quota spent).
const StallAfter = 20 * time.Millisecond

var (
	// ErrNotSender is returned by Serve on a subscription made by Subscribe,
	// which is read with Next.
	ErrNotSender = errors.New("the subscription is read with Next, not served")
	// ErrNotReader is returned by Next on a subscription made by
	// SubscribeSend, which is served.
	ErrNotReader = errors.New("the subscription is served, not read with Next")
)

// sendState is a send subscription's part of the sampler's pass.
type sendState struct {
	// mu is held across a send: sends to one subscription never overlap,
	// whether the pass or Serve makes them.
	mu      sync.Mutex
	lastSeq uint64
	stopped bool // cancelled or failed: no more sends
	// slow is set once a send of the pass stalled: from then on the
	// subscription gets its values like a Next one, and Serve sends them.
	slow   atomic.Bool
	failed chan struct{} // closed with err
	err    error
}

// SubscribeSend joins the sampler for interval like Subscribe, with values
// sent by send instead of read with Next. The sampler's pass calls send for
// every subscription on it in turn, from one goroutine, each value as soon
// as it is taken, so that sends that write to one connection (gRPC streams)
// are batched into few writes instead of one per subscriber. A send that
// takes longer than StallAfter moves its subscription off the pass: it gets
// the newest value from then on, skipping what it cannot take (counted in
// Update.Missed), sent by Serve. Sends never overlap, come in Seq order and
// never repeat a value; none is made once Cancel has returned.
//
// The caller must run Serve until it returns: it sends the first value (the
// sampler's latest, at once) and those of a subscription moved off the pass,
// and returns send's first error.
func (h *Hub[T]) SubscribeSend(interval time.Duration, send func(Update[T]) error) (*Subscription[T], error) {
	if send == nil {
		return nil, errors.New("subscribe: nil send function")
	}
	return h.subscribe(interval, send)
}

// Serve sends the subscription's values that the sampler's pass does not
// (the first one, and all of them once it is moved off the pass) until ctx
// is done (ctx's error), the subscription is cancelled or the hub closed
// (ErrClosed), or a send fails (its error).
func (s *Subscription[T]) Serve(ctx context.Context) error {
	if s.sender == nil {
		return ErrNotSender
	}
	for {
		select {
		case <-s.notify:
		case <-s.sender.failed:
			return s.sender.err
		case <-s.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
		u, ok := s.pending, s.hasPending
		var zero Update[T]
		s.pending, s.hasPending, s.missed = zero, false, 0
		s.mu.Unlock()
		if ok {
			s.sendValue(u.Value, u.Seq)
		}
	}
}

// sendValue sends value seq unless it or a later one was sent, or the
// subscription stopped. Missed counts the values skipped since the previous
// send. A failed send stops the subscription and ends Serve with its error.
func (s *Subscription[T]) sendValue(v T, seq uint64) {
	st := s.sender
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped || seq <= st.lastSeq {
		return
	}
	// The values skipped since the previous send: those replaced unsent
	// while it was off the pass (deliver has counted them for Stats).
	var missed uint64
	if st.lastSeq > 0 {
		missed = seq - st.lastSeq - 1
	}
	st.lastSeq = seq
	if err := s.sendRecovered(Update[T]{Value: v, Seq: seq, Missed: missed}); err != nil {
		st.stopped, st.err = true, err
		close(st.failed)
	}
}

// sendRecovered calls send, turning a panic into its error: the pass's goroutines are
// the sampler's, which a subscriber's send must not bring down.
func (s *Subscription[T]) sendRecovered(u Update[T]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("send of value %d panicked: %v", u.Seq, r)
		}
	}()
	return s.send(u)
}

// stopSending makes sure no send is made from now on, waiting for one in
// flight.
func (s *Subscription[T]) stopSending() {
	if s.sender == nil {
		return
	}
	s.sender.mu.Lock()
	s.sender.stopped = true
	s.sender.mu.Unlock()
}

// Sending states of one subscription in a pass.
const (
	passWaiting int32 = iota
	passSending
	passSent
	passMoved
)

// pass sends v to subs (send subscriptions not moved off the pass) from
// worker goroutines that take them in turn, and returns once every send has
// returned or stalled: a send running for StallAfter moves its subscription
// off the pass, and a new worker goes on with the rest, so a stalled
// receiver costs the others at most StallAfter once. One worker is what
// lets sends batch: it never blocks between two, so gRPC's writer finds
// many queued frames each time it runs.
func pass[T any](subs []*Subscription[T], v T, seq uint64) {
	n := len(subs)
	if n == 0 {
		return
	}
	var next atomic.Int64
	state := make([]atomic.Int32, n)
	since := make([]atomic.Int64, n)
	var left atomic.Int64
	left.Store(int64(n))
	all := make(chan struct{})
	done := func() {
		if left.Add(-1) == 0 {
			close(all)
		}
	}
	start := time.Now()
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			// Read before the state is published: the sampler reuses subs
			// once the pass is over, which a moved send may outlast.
			sub := subs[i]
			since[i].Store(int64(time.Since(start)))
			state[i].Store(passSending)
			sub.sendValue(v, seq)
			if state[i].CompareAndSwap(passSending, passSent) {
				done()
			}
		}
	}
	go work()
	t := time.NewTimer(StallAfter)
	defer t.Stop()
	for {
		select {
		case <-all:
			return
		case <-t.C:
		}
		now := int64(time.Since(start))
		moved := false
		for i := range n {
			if state[i].Load() == passSending && now-since[i].Load() >= int64(StallAfter) &&
				state[i].CompareAndSwap(passSending, passMoved) {
				subs[i].sender.slow.Store(true)
				moved = true
				done()
			}
		}
		if moved {
			go work()
		}
		t.Reset(StallAfter)
	}
}
