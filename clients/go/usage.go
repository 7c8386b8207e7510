package genailab

import (
	"context"
	"errors"
	"io"
	"time"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
)

// WatchUsage calls fn with a usage snapshot of the host every interval (at least 100 ms;
// 0 means the monitor's default, 1 s), with the number of snapshots skipped because fn
// was too slow. It returns nil when ctx ends, fn's error when fn fails, and the stream's
// error otherwise.
func (c *Client) WatchUsage(ctx context.Context, interval time.Duration, fn func(u *monitorv1.Usage, missed uint64) error) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Monitor().WatchUsage(sctx, &monitorv1.WatchUsageRequest{IntervalMs: interval.Milliseconds()})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the monitor ended the usage stream")
			}
			return err
		}
		if err := fn(msg.GetUsage(), msg.GetMissed()); err != nil {
			return err
		}
	}
}
