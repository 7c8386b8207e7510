// Package dispatch runs a job's image on the hosts: it places the image (package place,
// from the registry's cached telemetry), runs the offload cycle of the chosen host, and
// when that host fails mid-way (unreachable: its connection fails and its health check
// too) retries on another host, up to a bound, so that the caller gets one result. A host
// that answers but refuses the image for now (its diffusion engine busy) stays ready: the
// job is placed again after a short wait. A host stays busy until its LLM is
// back, so the next image placed there never races the reload.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/hosts"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Options configure the dispatcher.
type Options struct {
	Policy place.Policy
	// Attempts bounds the hosts one job is tried on; default 3.
	Attempts int
	// PlaceWait is how long a job waits for a host to become reachable when none can
	// take it; default 15 s.
	PlaceWait time.Duration
	// DiffusionModel is the lab's model, whose learnt correction placement uses.
	DiffusionModel string
	// BusyRetries bounds how often a job is placed again after a reachable host refused it
	// for now (its engine busy); default 10. BusyBackoff is the first wait before placing
	// it again, doubling up to 8×; default 500 ms.
	BusyRetries int
	BusyBackoff time.Duration
	// Queued, when set, counts the images waiting for each pinned host (the job
	// manager's): placement weighs a host's queue with its running images.
	Queued func() map[string]int
}

// Dispatcher runs images on the registry's hosts.
type Dispatcher struct {
	reg *hosts.Registry
	db  *state.DB
	ev  *events.Log
	o   Options
	log *slog.Logger
	wg  sync.WaitGroup
}

// New returns a dispatcher.
func New(reg *hosts.Registry, db *state.DB, ev *events.Log, o Options, log *slog.Logger) *Dispatcher {
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.PlaceWait <= 0 {
		o.PlaceWait = 15 * time.Second
	}
	if o.BusyRetries <= 0 {
		o.BusyRetries = 10
	}
	if o.BusyBackoff <= 0 {
		o.BusyBackoff = 500 * time.Millisecond
	}
	return &Dispatcher{reg: reg, db: db, ev: ev, o: o, log: log}
}

// Wait waits for the LLM reloads still running on any host.
func (d *Dispatcher) Wait() { d.wg.Wait() }

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Run places and runs an image anywhere.
func (d *Dispatcher) Run(ctx context.Context, jobID string, params *diffusionv1.ImageParams, h cycle.Hooks) (cycle.Outcome, error) {
	return d.RunPinned(ctx, jobID, "", params, h)
}

// RunPinned runs an image on the pinned host (none: placed), failing over to another
// host when the chosen one becomes unreachable (never for a pinned job), and placing it
// again later when the host answered that it cannot take it now (its engine busy).
func (d *Dispatcher) RunPinned(ctx context.Context, jobID, pin string, params *diffusionv1.ImageParams, h cycle.Hooks) (cycle.Outcome, error) {
	exclude := map[string]bool{}
	var failures []string
	attempt, busy := 1, 0
	for {
		host, choice, err := d.acquire(ctx, jobID, pin, params, exclude)
		if err != nil {
			if len(failures) > 0 {
				err = fmt.Errorf("%w (after failures on %d host(s): %s)", err, len(failures), joinLast(failures))
			}
			return cycle.Outcome{ReloadDone: closed}, err
		}
		msg := choice.Explanation
		switch {
		case busy > 0:
			msg = fmt.Sprintf("Placed again (%d of %d) after a busy engine. %s", busy, d.o.BusyRetries, msg)
		case attempt > 1:
			msg = fmt.Sprintf("Attempt %d of %d after a host failure. %s", attempt, d.o.Attempts, msg)
		}
		ev := d.ev.Emit(orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED, host.Name(), jobID, msg,
			map[string]float64{"attempt": float64(attempt), "hosts_considered": float64(choice.Considered), "needs_offload": b2f(choice.NeedsOffload)})
		if h.Event != nil {
			h.Event(ev)
		}
		if h.Placed != nil {
			h.Placed(host.Name())
		}
		out, err := host.Cycle.Run(ctx, jobID, params, h)
		// The host stays busy until its LLM is back.
		reloadDone := out.ReloadDone
		d.wg.Add(1)
		go func() { defer d.wg.Done(); <-reloadDone; d.reg.Release(host) }()
		out.ReloadDone = closed
		if err == nil || ctx.Err() != nil {
			return out, err
		}
		kind, why := d.classify(ctx, host, err)
		if ctx.Err() != nil {
			return out, err
		}
		switch kind {
		case imageFailure:
			return out, err
		case engineBusy:
			busy++
			if busy > d.o.BusyRetries {
				return out, fmt.Errorf("host %s cannot take the image now, %d times: %w", host.Name(), busy, err)
			}
			wait := min(d.o.BusyBackoff<<(busy-1), 8*d.o.BusyBackoff)
			d.log.Info("host answered that it cannot take the image now; placing it again", "host", host.Name(), "job", jobID, "error", err, "in", wait)
			ev = d.ev.Emit(orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED, host.Name(), jobID,
				fmt.Sprintf("Host %s is reachable but cannot take the image now (%v); the job is placed again in %v.", host.Name(), grpcMessage(err), wait),
				map[string]float64{"attempt": float64(attempt), "retrying": 1, "busy": 1})
			if h.Event != nil {
				h.Event(ev)
			}
			select {
			case <-ctx.Done():
				return out, err
			case <-time.After(wait):
			}
			continue
		}
		// The host is unreachable: its health check failed just now (CheckNow marked it).
		failures = append(failures, host.Name()+": "+err.Error())
		if pin != "" || attempt >= d.o.Attempts {
			return out, fmt.Errorf("host %s failed: %w", host.Name(), err)
		}
		exclude[host.Name()] = true
		d.log.Warn("host failed during a job; retrying elsewhere", "host", host.Name(), "job", jobID, "error", err, "health", why)
		ev = d.ev.Emit(orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED, host.Name(), jobID,
			fmt.Sprintf("Host %s failed during the image (%v); the job is placed again on another host.", host.Name(), err),
			map[string]float64{"attempt": float64(attempt), "retrying": 1})
		if h.Event != nil {
			h.Event(ev)
		}
		attempt++
	}
}

// failure is what an image's failure on a host says about the host.
type failure int

const (
	// imageFailure: the image itself failed (bad input, engine error); the caller gets it.
	imageFailure failure = iota
	// hostUnreachable: the host cannot be reached — a call failed with Unavailable (a
	// transport error: connection refused or closed, keepalive timeout) and its health
	// check fails now. The job fails over to another host.
	hostUnreachable
	// engineBusy: a call failed with Unavailable but the host answers its health checks:
	// the service itself refused (the diffusion engine's "Server is busy generating another
	// image"), or the connection failed and is already back. The host stays ready; the job
	// is placed again after a short wait, on it or on another host.
	engineBusy
)

// classify tells what err, from a cycle on host, says about the host, asking the host's
// health when the error alone cannot say.
func (d *Dispatcher) classify(ctx context.Context, host *hosts.Host, err error) (failure, string) {
	if !unavailable(err) {
		return imageFailure, ""
	}
	if ok, why := d.reg.CheckNow(ctx, host); !ok {
		return hostUnreachable, why
	}
	return engineBusy, ""
}

// acquire places the image, waiting while the hosts able to take it are busy (or for a
// bounded time while none is reachable).
func (d *Dispatcher) acquire(ctx context.Context, jobID, pin string, params *diffusionv1.ImageParams, exclude map[string]bool) (*hosts.Host, place.Choice, error) {
	img := probe.ImageOf(params)
	req := agent.ImageRequest{Width: img.Width, Height: img.Height, N: img.N, Edit: img.Edit,
		DecodedPreviews: img.Preview == "tae" || img.Preview == "vae"}
	if d.o.DiffusionModel != "" {
		if c, err := d.db.Correction(d.o.DiffusionModel); err == nil {
			req.CorrectionBytes = int64(c.DeltaBytes)
		}
	}
	deadline := time.Now().Add(d.o.PlaceWait)
	refreshed := false
	for {
		changed := d.reg.Changed()
		var queued map[string]int
		if d.o.Queued != nil {
			queued = d.o.Queued()
		}
		h, ch, err := d.reg.Acquire(req, place.Request{Pin: pin, Policy: d.o.Policy, Needs: img.Needs()}, queued, exclude)
		if err == nil {
			return h, ch, nil
		}
		if errors.Is(err, place.ErrUnsupported) {
			return nil, ch, err // no host's engine can run it in its mode: waiting changes nothing
		}
		var wait <-chan time.Time
		if errors.Is(err, place.ErrNoHost) {
			if !refreshed {
				// The cached telemetry may predate a change (an engine just started with
				// its model): look again with fresh readings before waiting.
				refreshed = true
				d.reg.RefreshAll()
			}
			left := time.Until(deadline)
			if left <= 0 {
				return nil, ch, err
			}
			wait = time.After(left)
		}
		select {
		case <-ctx.Done():
			return nil, ch, ctx.Err()
		case <-changed:
		case <-wait:
			return nil, ch, err
		}
	}
}

// unavailable reports whether err carries the gRPC code Unavailable: the host's
// connection failed, or its service refused the call for now.
func unavailable(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable
}

// grpcMessage is err's status message (the text without "rpc error: code = ...").
func grpcMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func joinLast(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}
