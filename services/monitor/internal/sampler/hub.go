package sampler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Interval bounds: faster sampling would cost more than it shows; slower
// is better served by GetHistory.
const (
	MinInterval = 100 * time.Millisecond
	MaxInterval = time.Hour
)

var (
	// ErrInterval is returned for an interval outside [MinInterval, MaxInterval].
	ErrInterval = errors.New("interval out of range")
	// ErrClosed is returned by Next after Cancel or Hub.Close, and by
	// Subscribe after Hub.Close.
	ErrClosed = errors.New("subscription closed")
)

// Hub owns the samplers, one per interval in use.
type Hub[T any] struct {
	newCollect func() func(context.Context) T
	newTicker  NewTicker

	mu       sync.Mutex
	samplers map[time.Duration]*sampler[T]
	closed   bool
	wg       sync.WaitGroup

	missed atomic.Uint64
}

// NewHub returns a Hub. newCollect is called once per sampler started and
// returns that sampler's collect function (which may keep state between
// calls, e.g. counters for CPU percentages); it is only ever called from
// that sampler's goroutine. newTicker nil means SystemTicker.
func NewHub[T any](newCollect func() func(context.Context) T, newTicker NewTicker) *Hub[T] {
	if newTicker == nil {
		newTicker = SystemTicker
	}
	return &Hub[T]{newCollect: newCollect, newTicker: newTicker, samplers: make(map[time.Duration]*sampler[T])}
}

type sampler[T any] struct {
	interval time.Duration
	cancel   context.CancelFunc

	// subs is replaced, never modified, so the sampler reads it without
	// locking; writers hold Hub.mu.
	subs atomic.Pointer[[]*Subscription[T]]

	// latest is the newest value, given to late joiners at once.
	latestMu  sync.Mutex
	latest    T
	latestSeq uint64
}

// Subscribe joins the sampler for interval, starting it if needed.
func (h *Hub[T]) Subscribe(interval time.Duration) (*Subscription[T], error) {
	return h.subscribe(interval, nil)
}

// subscribe joins the sampler for interval; send is nil for a subscription
// read with Next.
func (h *Hub[T]) subscribe(interval time.Duration, send func(Update[T]) error) (*Subscription[T], error) {
	if interval < MinInterval || interval > MaxInterval {
		return nil, fmt.Errorf("%w: %v not in [%v, %v]", ErrInterval, interval, MinInterval, MaxInterval)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	s := h.samplers[interval]
	if s == nil {
		s = h.start(interval)
	}
	sub := newSubscription(h, s, send)
	// Joining and receiving the latest value happen under latestMu, so a
	// concurrent fan-out reaches the new subscriber exactly once: either
	// before it joins (and it gets that value here) or after.
	s.latestMu.Lock()
	subs := append(slices.Clone(*s.subs.Load()), sub)
	s.subs.Store(&subs)
	if s.latestSeq > 0 {
		sub.deliver(s.latest, s.latestSeq)
	}
	s.latestMu.Unlock()
	return sub, nil
}

// start launches a sampler; h.mu is held.
func (h *Hub[T]) start(interval time.Duration) *sampler[T] {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler[T]{interval: interval, cancel: cancel}
	s.subs.Store(&[]*Subscription[T]{})
	h.samplers[interval] = s
	collect := h.newCollect()
	ticker := h.newTicker(interval)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer ticker.Stop()
		s.run(ctx, collect, ticker)
	}()
	return s
}

func (s *sampler[T]) run(ctx context.Context, collect func(context.Context) T, ticker Ticker) {
	var seq uint64
	var onPass []*Subscription[T]
	sample := func() {
		v := collect(ctx)
		if ctx.Err() != nil {
			return
		}
		seq++
		// latestMu is held across the hand-over; see Subscribe. The pass
		// sends after it, so that a send in flight never holds up a
		// subscriber joining.
		s.latestMu.Lock()
		s.latest, s.latestSeq = v, seq
		onPass = onPass[:0]
		for _, sub := range *s.subs.Load() {
			if sub.onPass() {
				onPass = append(onPass, sub)
			} else {
				sub.deliver(v, seq)
			}
		}
		s.latestMu.Unlock()
		pass(onPass, v, seq)
		clear(onPass)
	}
	sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
			sample()
		}
	}
}

func (h *Hub[T]) unsubscribe(sub *Subscription[T]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := sub.sampler
	old := *s.subs.Load()
	i := slices.Index(old, sub)
	if i < 0 {
		return
	}
	subs := slices.Delete(slices.Clone(old), i, i+1)
	s.subs.Store(&subs)
	if len(subs) == 0 && h.samplers[s.interval] == s {
		delete(h.samplers, s.interval)
		s.cancel()
	}
}

// Close stops every sampler, ends every subscription and waits for the
// sampler goroutines to exit.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	h.closed = true
	for d, s := range h.samplers {
		delete(h.samplers, d)
		s.cancel()
		for _, sub := range *s.subs.Load() {
			sub.close()
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// Stats describes the hub at one instant.
type Stats struct {
	Samplers    int
	Subscribers int
	// Missed is the total number of values skipped by slow subscribers
	// since the hub was created.
	Missed uint64
}

// Stats reports the running samplers and subscribers.
func (h *Hub[T]) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := Stats{Samplers: len(h.samplers), Missed: h.missed.Load()}
	for _, s := range h.samplers {
		st.Subscribers += len(*s.subs.Load())
	}
	return st
}

// Subscribers reports how many subscribers the sampler for interval has.
func (h *Hub[T]) Subscribers(interval time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.samplers[interval]; s != nil {
		return len(*s.subs.Load())
	}
	return 0
}
