package cycle

import (
	"context"
	"time"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
)

// usageWatch is a monitor usage stream read in the background, so that a wait can give up
// at its deadline even when no reading comes.
type usageWatch struct {
	cancel context.CancelFunc
	ch     chan *monitorv1.Usage
}

// watchUsage opens a usage stream at the given interval (at least the monitor's 100 ms);
// nil when the monitor refuses it.
func watchUsage(ctx context.Context, mon monitorv1.MonitorServiceClient, every time.Duration) *usageWatch {
	wctx, cancel := context.WithCancel(ctx)
	stream, err := mon.WatchUsage(wctx, &monitorv1.WatchUsageRequest{IntervalMs: max(every.Milliseconds(), 100)})
	if err != nil {
		cancel()
		return nil
	}
	w := &usageWatch{cancel: cancel, ch: make(chan *monitorv1.Usage, 1)}
	go func() {
		defer close(w.ch)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case w.ch <- r.GetUsage():
			default: // keep only the newest unread reading
				select {
				case <-w.ch:
				default:
				}
				w.ch <- r.GetUsage()
			}
		}
	}()
	return w
}

// next returns the next reading, or nil when the stream ended, ctx ended or the deadline passed.
func (w *usageWatch) next(ctx context.Context, deadline time.Time) *monitorv1.Usage {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case u := <-w.ch:
		return u
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}

func (w *usageWatch) close() {
	if w != nil {
		w.cancel()
	}
}
