package cycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/decide"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// ErrNoResult is returned when the diffusion service ends its stream without an image.
var ErrNoResult = errors.New("the diffusion service ended the stream without a result")

// generate runs the image on the diffusion service, passing progress through, while
// sampling the diffusion engine's memory to learn from its peak. Past its deadline
// (deadline.go) the stream is cancelled — the diffusion service then kills the engine —
// and the image fails with a *DeadlineError.
func (c *Cycle) generate(ctx context.Context, params *diffusionv1.ImageParams, f probe.Facts, d decide.Decision, h Hooks) (*diffusionv1.ImageResult, error) {
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, hgt := int(params.GetWidth()), int(params.GetHeight())
	if w == 0 {
		w = 512
	}
	if hgt == 0 {
		hgt = 512
	}
	start := time.Now()
	dl := newGenDeadline(c.o, params, w, hgt, c.timing.get(), start)
	limit, _ := dl.limit()
	timer := time.AfterFunc(limit, func() { cancel(dl.err()) })
	defer timer.Stop()
	var peak peakMeter
	if c.o.PeakInterval > 0 && f.DiffusionModel != "" && d.Image.TotalBytes > 0 {
		peak.start(gctx, c.c.Monitor, c.o.PeakInterval, f.GPUIndex)
	}
	// A deadline that passes before the stream opens ends it the same way.
	failure := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var de *DeadlineError
		if errors.As(context.Cause(gctx), &de) {
			c.log.Warn("generation cancelled at its deadline", "limit", de.Limit, "basis", de.Basis, "step", de.Step, "total_steps", de.TotalSteps)
			return de
		}
		return err
	}
	stream, err := c.c.Diffusion.GenerateImage(gctx, &diffusionv1.GenerateImageRequest{Params: params})
	if err != nil {
		return nil, failure(fmt.Errorf("generate on the diffusion service: %w", err))
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.Internal, ErrNoResult.Error())
		}
		if err != nil {
			return nil, failure(err)
		}
		switch ev := msg.Event.(type) {
		case *diffusionv1.GenerateImageResponse_Progress:
			if dl.progress(ev.Progress, time.Now()) && c.o.GenerationTimeout <= 0 {
				limit, _ := dl.limit()
				timer.Reset(time.Until(start.Add(limit)))
			}
			if h.Progress != nil {
				h.Progress(ev.Progress)
			}
		case *diffusionv1.GenerateImageResponse_Result:
			cancel(nil)
			if t, ok := dl.timing(time.Now()); ok {
				c.timing.set(t)
			}
			if p := peak.wait(); p > 0 {
				c.learn(f.DiffusionModel, f.Uncorrected.TotalBytes, p)
			}
			return ev.Result, nil
		}
	}
}

// learn folds a measured peak into the model's stored correction.
func (c *Cycle) learn(model string, estimated, peak uint64) {
	err := c.db.UpdateCorrection(model, func(old state.Correction) state.Correction {
		return state.Correction{DeltaBytes: estimate.Learn(old.DeltaBytes, old.Samples, estimated, peak), Samples: old.Samples + 1}
	})
	if err != nil {
		c.log.Warn("store learnt correction", "model", model, "error", err)
	}
}

// peakMeter follows the monitor's readings of the diffusion engine's memory.
type peakMeter struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak uint64
}

// peakDelay is how long into a generation the meter first reads the monitor, for readings
// every interval: then the engine is past loading its model, and every reading it is given
// was taken while the engine ran. The monitor hands a stream its sampler's latest reading
// at once, which may be up to an interval old (plus the time a collection takes): read at
// the generation's start, that is the memory of the engine before, such as the previous
// image's. An image done sooner is not measured (nor made slower by a collection on the
// monitor as it starts).
func peakDelay(interval time.Duration) time.Duration { return interval + interval/2 }

func (p *peakMeter) start(ctx context.Context, mon monitorv1.MonitorServiceClient, every time.Duration, gpu int) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		interval := max(every, 100*time.Millisecond)
		delay := time.NewTimer(peakDelay(interval))
		defer delay.Stop()
		select {
		case <-ctx.Done():
			return
		case <-delay.C:
		}
		stream, err := mon.WatchUsage(ctx, &monitorv1.WatchUsageRequest{IntervalMs: interval.Milliseconds()})
		if err != nil {
			return
		}
		for {
			u, err := stream.Recv()
			if err != nil {
				return
			}
			if n := probe.DiffusionMemory(u.GetUsage(), gpu); n > 0 {
				p.mu.Lock()
				p.peak = max(p.peak, n)
				p.mu.Unlock()
			}
		}
	}()
}

func (p *peakMeter) wait() uint64 {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}
