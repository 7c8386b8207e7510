package supervisor

import (
	"context"
	"errors"
	"time"
)

var errNotReady = errors.New("readiness probe: not ready")

// awaitReady calls ready once the process is ready, unless ctx ends first
// (the process exited, the start timed out or was aborted). See Spec.Ready.
func (p *proc) awaitReady(ctx context.Context, ready func()) {
	spec := p.spec
	if spec.Ready == nil {
		if spec.ReadyOnLine != nil {
			select {
			case <-p.trigger:
			case <-ctx.Done():
				return
			}
		}
		ready()
		return
	}
	delay := spec.ProbeBackoff.Initial
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, spec.ProbeTimeout)
		ok, err := spec.Ready(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if ok {
			ready()
			return
		}
		if err == nil {
			err = errNotReady
		}
		p.probeErr.Store(&err)
		timer.Reset(delay)
		select {
		case <-p.trigger: // the engine said it is listening: look now
			delay = spec.ProbeBackoff.Initial
		case <-timer.C:
			delay = spec.ProbeBackoff.next(delay)
		case <-ctx.Done():
			return
		}
	}
}
