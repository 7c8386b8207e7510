package sampler

import "time"

// Ticker delivers ticks on C until stopped; *time.Ticker behind an
// interface so tests can drive samplers with a manual clock.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// NewTicker starts a Ticker for an interval.
type NewTicker func(time.Duration) Ticker

// SystemTicker is a NewTicker backed by time.NewTicker.
func SystemTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

func (s systemTicker) C() <-chan time.Time { return s.t.C }
func (s systemTicker) Stop()               { s.t.Stop() }
