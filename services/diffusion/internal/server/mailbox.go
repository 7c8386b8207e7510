package server

import (
	"sync"

	"github.com/genailab/genailab/services/diffusion/internal/engine"
)

// progressBox hands progress from a producer that must not block (the engine's output reader)
// to a consumer that may (a gRPC stream). An update that only moves the percent replaces the
// pending one of the same stage and step, so a slow client sees fewer re-estimates, never stale
// ones; a new stage or a new step is kept, so every step 1..N reaches the client as its own
// message (the real sd.cpp prints the last step and "sampling completed" together, and a
// latest-wins box lost that step inside the decoding update). The queue is bounded: past
// maxPending the oldest kept updates are merged away, and the engine is never slowed.
type progressBox struct {
	mu      sync.Mutex
	pending []engine.Progress
	notify  chan struct{}
}

// maxPending bounds the queue of a client that does not read (150 steps is the most one image
// has; a batch has more, and then the oldest pending steps are dropped first).
const maxPending = 512

func newProgressBox() *progressBox { return &progressBox{notify: make(chan struct{}, 1)} }

// put stores p and wakes the consumer. Previews are latest-wins: a pending update keeps only
// the newest preview not yet taken (an update without one that replaces it inherits it), so
// a slow client skips previews and is never sent more than one per take.
func (m *progressBox) put(p engine.Progress) {
	m.mu.Lock()
	if p.Preview != nil {
		for i := range m.pending {
			m.pending[i].Preview = nil
		}
	}
	if n := len(m.pending); n > 0 && m.pending[n-1].Stage == p.Stage && m.pending[n-1].Step == p.Step {
		if p.Preview == nil {
			p.Preview = m.pending[n-1].Preview
		}
		m.pending[n-1] = p
	} else {
		if n >= maxPending {
			m.pending = append(m.pending[:0], m.pending[n-maxPending+1:]...)
		}
		m.pending = append(m.pending, p)
	}
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// take returns the updates stored since the last take, oldest first.
func (m *progressBox) take() []engine.Progress {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.pending
	m.pending = nil
	return out
}
