// Package samplertest provides a manual clock for driving samplers in tests
// deterministically: a test ticks an interval's sampler when it chooses.
package samplertest

import (
	"sync"
	"time"

	"github.com/genailab/genailab/services/monitor/internal/sampler"
)

// Clock makes manual tickers; use Clock.NewTicker as a sampler.NewTicker.
type Clock struct {
	mu      sync.Mutex
	tickers map[time.Duration]*ticker
}

// NewClock returns a Clock with no tickers.
func NewClock() *Clock {
	return &Clock{tickers: make(map[time.Duration]*ticker)}
}

type ticker struct {
	c       chan time.Time
	stopped chan struct{}
	once    sync.Once
	clock   *Clock
	d       time.Duration
}

func (t *ticker) C() <-chan time.Time { return t.c }

func (t *ticker) Stop() {
	t.once.Do(func() {
		close(t.stopped)
		t.clock.mu.Lock()
		if t.clock.tickers[t.d] == t {
			delete(t.clock.tickers, t.d)
		}
		t.clock.mu.Unlock()
	})
}

// NewTicker is a sampler.NewTicker whose ticks come from Tick.
func (c *Clock) NewTicker(d time.Duration) sampler.Ticker {
	t := &ticker{c: make(chan time.Time), stopped: make(chan struct{}), clock: c, d: d}
	c.mu.Lock()
	c.tickers[d] = t
	c.mu.Unlock()
	return t
}

// Tick fires the ticker of interval d once and returns when its sampler has
// taken the tick (not when it has finished sampling). It reports false if
// no ticker for d is running or it stopped meanwhile.
func (c *Clock) Tick(d time.Duration) bool {
	c.mu.Lock()
	t := c.tickers[d]
	c.mu.Unlock()
	if t == nil {
		return false
	}
	select {
	case t.c <- time.Now():
		return true
	case <-t.stopped:
		return false
	}
}

// Running reports whether a ticker for interval d is running.
func (c *Clock) Running(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tickers[d] != nil
}
