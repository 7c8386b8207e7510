// Package cycle is the offload cycle around one image: decide; if the LLM must make room,
// let its in-flight requests finish, persist its configuration (before stopping it), stop
// it, wait until the monitor shows its memory freed; generate, passing progress through;
// then reload the LLM with the saved configuration, retrying with backoff, and clear the
// saved state only once it is healthy.
//
// The reload happens on every path once the state is saved — success, engine failure,
// cancel, client gone — on a context detached from the request, and it may run while the
// image is being delivered. If the orchestrator dies in between (or the host goes away), the
// saved state stays in the database and the host registry (internal/hosts) brings the LLM
// back with Reload once the host is reachable again.
package cycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/decide"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Options time the cycle.
type Options struct {
	// Host names this host in saved states and events ("" is the local host).
	Host string
	// DrainTimeout lets in-flight chat requests finish before the stop; default 10 s.
	DrainTimeout time.Duration
	// StopTimeout bounds the Stop call itself; default 60 s.
	StopTimeout time.Duration
	// FreeTimeout bounds the wait for the monitor to show the memory freed; default 15 s.
	FreeTimeout time.Duration
	// FreePoll is the monitor polling interval; default 100 ms.
	FreePoll time.Duration
	// ReloadTimeout bounds all reload attempts together; default 5 min.
	ReloadTimeout time.Duration
	// ReadyTimeout is the readiness wait of each start attempt; default 2 min.
	ReadyTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reload attempts; default 500 ms, 10 s.
	BackoffMin, BackoffMax time.Duration
	// PeakInterval is the monitor sampling interval for the diffusion engine's peak
	// memory during generation (at least 100 ms), the first reading 1.5 intervals in
	// (peakDelay); default 250 ms; negative disables learning.
	PeakInterval time.Duration
	// GenerationTimeout, when positive, is the fixed total deadline of one generation
	// (-generation-timeout). Zero derives it from the steps and the measured step time
	// (deadline.go): GenerationTimeoutFactor × (time before sampling + steps × step time +
	// time after), at least GenerationTimeoutMin (default 3 min), at most the hard cap
	// GenerationTimeoutMax (-generation-timeout-max, default 1 h), which alone applies
	// before any step time is known. Factor default 4.
	GenerationTimeout       time.Duration
	GenerationTimeoutMax    time.Duration
	GenerationTimeoutMin    time.Duration
	GenerationTimeoutFactor float64
	// LateReload starts the reload only when Run returns (the image delivered to the
	// caller), not at the engine's STAGE_DONE: the behaviour before issue 17, kept as the
	// baseline of the down-time benchmark (-late-reload).
	LateReload bool
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.DrainTimeout, 10*time.Second)
	def(&o.StopTimeout, 60*time.Second)
	def(&o.FreeTimeout, 15*time.Second)
	def(&o.FreePoll, 100*time.Millisecond)
	def(&o.ReloadTimeout, 5*time.Minute)
	def(&o.ReadyTimeout, 2*time.Minute)
	def(&o.BackoffMin, 500*time.Millisecond)
	def(&o.BackoffMax, 10*time.Second)
	def(&o.PeakInterval, 250*time.Millisecond)
	def(&o.GenerationTimeoutMax, DefaultGenerationTimeoutMax)
	def(&o.GenerationTimeoutMin, DefaultGenerationTimeoutMin)
	if o.GenerationTimeoutFactor <= 0 {
		o.GenerationTimeoutFactor = DefaultGenerationTimeoutFactor
	}
	o.GenerationTimeoutMin = min(o.GenerationTimeoutMin, o.GenerationTimeoutMax)
}

// Cycle runs offload cycles. One image at a time: the caller (the job worker) serialises.
type Cycle struct {
	c      probe.Clients
	prober *probe.Prober
	db     *state.DB
	ev     *events.Log
	o      Options
	log    *slog.Logger
	// timing is the step time measured on the host's last image, for the next deadline.
	timing timings
	// down learns the LLM's down time in an offload beyond the image (downtime.go).
	down downTimes
}

// New returns a Cycle.
func New(c probe.Clients, prober *probe.Prober, db *state.DB, ev *events.Log, o Options, log *slog.Logger) *Cycle {
	o.defaults()
	return &Cycle{c: c, prober: prober, db: db, ev: ev, o: o, log: log}
}

// Hooks receive what happens during a run.
type Hooks struct {
	// Event receives each orchestration event of the run.
	Event func(*orchestratorv1.Event)
	// Progress receives engine progress.
	Progress func(*diffusionv1.Progress)
	// Placed receives the host the image is placed on (again on a failover).
	Placed func(host string)
}

// Outcome is what a run produced.
type Outcome struct {
	// Result is the image (nil on failure).
	Result *diffusionv1.ImageResult
	// Offloaded tells whether the LLM was stopped for it.
	Offloaded bool
	// Decision is the decision made (zero when the probe failed).
	Decision decide.Decision
	// ReloadDone is closed when the LLM reload (if any) has ended; already closed when
	// there was none.
	ReloadDone <-chan struct{}
	// Generation is the time from opening the diffusion service's stream to the image
	// received (zero when the generation did not start).
	Generation time.Duration
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Run runs one image through the cycle. The returned Outcome's ReloadDone must be waited
// for before the next image: the reload continues after Run returns, detached from ctx.
func (c *Cycle) Run(ctx context.Context, jobID string, params *diffusionv1.ImageParams, h Hooks) (Outcome, error) {
	out := Outcome{ReloadDone: closedChan}
	emit := func(typ orchestratorv1.EventType, msg string, values map[string]float64) {
		ev := c.ev.Emit(typ, c.o.Host, jobID, msg, values)
		if h.Event != nil {
			h.Event(ev)
		}
	}
	gatherStart := time.Now()
	d, facts, err := c.prober.GatherAndDecideImage(ctx, probe.ImageOf(params))
	gathered := map[string]float64{"gather_ms": ms(time.Since(gatherStart))}
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if errors.Is(err, probe.ErrUnsupported) {
			return out, err // refused by the engine's mode: nothing is offloaded for it
		}
		// Without the numbers the LLM is left alone: an image may still fit, and stopping
		// the LLM blindly would be worse than a failed image.
		c.log.Warn("offload decision failed; generating without offload", "job", jobID, "error", err)
		emit(orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED, "Generating without offload: the decision could not be made: "+err.Error(), gathered)
	} else {
		out.Decision = d
		values := d.Values()
		maps.Copy(values, gathered)
		emit(orchestratorv1.EventType_EVENT_TYPE_JOB_PLACED, d.Explanation, values)
	}
	var genStart time.Time
	if err == nil && d.NeedsOffload {
		reloadDone := make(chan struct{})
		saved, err := c.offload(ctx, jobID, d, facts, params, emit)
		if saved != nil {
			// From the moment the state is saved, the LLM comes back whatever happens: at
			// the latest when Run returns, and as soon as the engine has released its memory
			// (early.go), in parallel with the delivery of the image.
			out.Offloaded = true
			out.ReloadDone = reloadDone
			reload := sync.OnceFunc(func() {
				var image time.Duration
				if !genStart.IsZero() {
					image = time.Since(genStart)
				}
				go func() {
					defer close(reloadDone)
					rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.ReloadTimeout)
					defer cancel()
					if c.Reload(rctx, saved, emit) == nil && image > 0 {
						c.down.learn(time.Since(saved.GetSavedAt().AsTime()), image)
					}
				}()
			})
			defer reload()
			if !c.o.LateReload {
				h = earlyReload(h, reload)
			}
			h = prefetchAtSampling(h, func() { go c.prefetch(ctx, jobID) })
		}
		if err != nil {
			return out, err
		}
	}
	genStart = time.Now()
	res, err := c.generate(ctx, params, facts, out.Decision, h)
	out.Generation = time.Since(genStart)
	if err != nil {
		return out, err
	}
	out.Result = res
	return out, nil
}

// offload saves the LLM's state, stops it and waits for its memory to be freed. It returns
// the saved state once persisted (nil when nothing was saved) and an error when the cycle
// cannot go on.
func (c *Cycle) offload(ctx context.Context, jobID string, d decide.Decision, f probe.Facts, params *diffusionv1.ImageParams, emit func(orchestratorv1.EventType, string, map[string]float64)) (*orchestratorv1.SavedState, error) {
	start := time.Now()
	emit(orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_STARTED,
		fmt.Sprintf("Offloading the LLM (%s) to free %s for the image.", f.LLM.GetModelId(), decide.Bytes(d.LLMReleaseBytes)), d.Values())
	saved := &orchestratorv1.SavedState{
		Host: c.o.Host, LlmConfig: f.LLM.GetConfig(), WasRunning: true, SavedAt: timestamppb.Now(), Reason: jobID,
	}
	if saved.LlmConfig == nil {
		saved.LlmConfig = &llmv1.LLMConfig{ModelId: f.LLM.GetModelId()}
	}
	if err := c.db.PutSavedState(saved); err != nil {
		return nil, fmt.Errorf("save the LLM state before offloading (the LLM was left running): %w", err)
	}
	// The stop must complete even if the client goes away meanwhile: detach it.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.StopTimeout)
	defer cancel()
	stopReq := &llmv1.StopRequest{ForOffload: true, DrainTimeoutMs: c.o.DrainTimeout.Milliseconds(), JobId: jobID}
	if down, ok := c.ExpectedDown(params); ok {
		stopReq.ExpectedDownMs = proto.Int64(down.Milliseconds())
	}
	resp, err := c.c.LLM.Stop(sctx, stopReq)
	if err != nil {
		return saved, fmt.Errorf("stop the LLM for offload: %w", err)
	}
	slots := resp.GetSlotSave()
	for _, sl := range slots.GetSlots() {
		saved.SlotFiles = append(saved.SlotFiles, sl.GetFile())
	}
	if pc := resp.GetPreviousConfig(); pc != nil || len(saved.SlotFiles) > 0 {
		// The service's own record of what it ran with is authoritative; the slot files
		// are restored by the reload, also after a restart of the orchestrator.
		if pc != nil {
			saved.LlmConfig = pc
		}
		if err := c.db.PutSavedState(saved); err != nil {
			c.log.Warn("update saved state with the stopped LLM's configuration and slot files", "error", err)
		}
	}
	stopped := time.Since(start)
	// A usage stream opened now starts a sampler that reads at once (unless another client
	// shares its interval, when the next reading comes within the interval): the first
	// reading after the stop comes without waiting for a periodic tick.
	stoppedAt := time.Now()
	watch := watchUsage(ctx, c.c.Monitor, c.o.FreePoll)
	defer watch.close()
	freed, confirmed, err := c.waitFreed(ctx, watch, stoppedAt, f.LLM.GetPid(), f.GPUIndex, d.FreeBytes)
	if err != nil {
		return saved, err
	}
	msg := fmt.Sprintf("The LLM is offloaded; the monitor shows %s more free.", decide.Bytes(freed))
	if !confirmed {
		msg = fmt.Sprintf("The LLM is stopped, but the monitor did not confirm its memory freed within %s; generating anyway.", c.o.FreeTimeout)
	}
	if slots != nil {
		msg += fmt.Sprintf(" %s saved (%d tokens, %s, %d ms).", plural(len(slots.GetSlots()), "conversation"),
			slots.GetTokens(), decide.Bytes(uint64(max(slots.GetBytes(), 0))), slots.GetDurationMs())
	}
	emit(orchestratorv1.EventType_EVENT_TYPE_OFFLOAD_FINISHED, msg, map[string]float64{
		"freed_bytes": float64(freed), "duration_ms": ms(time.Since(start)), "stop_ms": ms(stopped), "confirmed": b2f(confirmed),
		"slots_saved": float64(len(slots.GetSlots())), "tokens_saved": float64(slots.GetTokens()),
		"slot_bytes": float64(slots.GetBytes()), "slot_save_ms": float64(slots.GetDurationMs()), "slots_not_saved": float64(len(slots.GetSkipped())),
	})
	return saved, nil
}

// waitFreed waits until the monitor's readings no longer show the LLM's process (pid), or,
// when its pid is unknown, show more memory free than before. It reads a usage stream and
// only trusts readings taken after the stop returned; without the stream it polls GetUsage. It returns
// how much more memory is free than before, and whether the monitor confirmed it.
func (c *Cycle) waitFreed(ctx context.Context, w *usageWatch, stoppedAt time.Time, pid int32, gpu int, freeBefore uint64) (uint64, bool, error) {
	deadline := time.Now().Add(c.o.FreeTimeout)
	var last uint64
	freed := func(u *monitorv1.Usage) bool {
		last = freeOf(u, gpu)
		_, present := probe.LLMResident(u, pid)
		return !present && (pid > 0 || last > freeBefore)
	}
	for {
		var u *monitorv1.Usage
		if w != nil {
			u = w.next(ctx, deadline)
			if u != nil && u.GetTime().AsTime().Before(stoppedAt) {
				continue // taken before the stop finished
			}
		} else if r, err := c.c.Monitor.GetUsage(ctx, monitorUsageReq); err == nil {
			u = r.GetUsage()
		}
		if u != nil && freed(u) {
			return sat(last, freeBefore), true, nil
		}
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		if time.Now().After(deadline) {
			return sat(last, freeBefore), false, nil
		}
		if w == nil || u == nil {
			w = nil // the stream ended: poll
			select {
			case <-ctx.Done():
				return 0, false, ctx.Err()
			case <-time.After(c.o.FreePoll):
			}
		}
	}
}

// Reload starts the LLM with the saved configuration, retrying with backoff until it is
// healthy or ctx ends; then it clears the saved state. A failed attempt is recorded in the
// saved state and as an event; when all fail, the state is kept.
func (c *Cycle) Reload(ctx context.Context, saved *orchestratorv1.SavedState, emit func(orchestratorv1.EventType, string, map[string]float64)) error {
	if emit == nil {
		emit = func(typ orchestratorv1.EventType, msg string, v map[string]float64) {
			c.ev.Emit(typ, saved.GetHost(), saved.GetReason(), msg, v)
		}
	}
	start := time.Now()
	emit(orchestratorv1.EventType_EVENT_TYPE_RELOAD_STARTED,
		fmt.Sprintf("Reloading the LLM (%s) with its saved configuration.", saved.GetLlmConfig().GetModelId()), nil)
	cfg := saved.GetLlmConfig()
	backoff := c.o.BackoffMin
	for attempt := 1; ; attempt++ {
		info, restored, err := c.startOnce(ctx, cfg, saved.GetSlotFiles())
		if err == nil {
			if _, err := c.db.ClearSavedState(saved.GetHost()); err != nil {
				c.log.Warn("clear saved state after reload", "error", err)
			}
			down := time.Duration(0)
			if at := saved.GetSavedAt(); at != nil {
				down = time.Since(at.AsTime())
			}
			msg := fmt.Sprintf("The LLM is back and healthy after %d attempt(s); it was down %s.", attempt, down.Round(time.Millisecond))
			if n := len(saved.GetSlotFiles()); n > 0 {
				msg += fmt.Sprintf(" %s of %d restored (%d tokens, %d ms)", plural(len(restored.GetSlots()), "conversation"), n,
					restored.GetTokens(), restored.GetDurationMs())
				if sk := restored.GetSkipped(); len(sk) > 0 {
					msg += fmt.Sprintf("; %d skipped: %s", len(sk), sk[0].GetReason())
				}
				msg += "."
			}
			emit(orchestratorv1.EventType_EVENT_TYPE_RELOAD_FINISHED, msg,
				map[string]float64{"duration_ms": ms(time.Since(start)), "attempts": float64(attempt), "pid": float64(info.GetPid()),
					"down_ms": ms(down), "slots_restored": float64(len(restored.GetSlots())), "tokens_restored": float64(restored.GetTokens()),
					"slots_skipped": float64(len(restored.GetSkipped())), "slot_restore_ms": float64(restored.GetDurationMs())})
			return nil
		}
		saved.ReloadAttempts = int32(attempt)
		saved.LastReloadError = err.Error()
		if perr := c.db.PutSavedState(saved); perr != nil {
			c.log.Warn("record reload failure in saved state", "error", perr)
		}
		giveUp := ctx.Err() != nil || time.Until(deadlineOf(ctx)) < backoff
		msg := fmt.Sprintf("Reload attempt %d failed: %v; retrying in %s.", attempt, err, backoff)
		if giveUp {
			msg = fmt.Sprintf("Reload attempt %d failed: %v; giving up for now — the saved state is kept (see GetSavedState) and the LLM will be reloaded on the next start.", attempt, err)
		}
		emit(orchestratorv1.EventType_EVENT_TYPE_RELOAD_FAILED, msg, map[string]float64{"attempt": float64(attempt)})
		if giveUp {
			return fmt.Errorf("reload the LLM: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.o.BackoffMax)
		if isPortProblem(err) && cfg.GetPort() != 0 {
			// The port it had was taken meanwhile: let the service pick a free one.
			cfg = cloneConfig(cfg)
			cfg.Port = 0
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(time.Hour)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// errNotHealthy is returned when a start returned but the server is not healthy.
var errNotHealthy = errors.New("the LLM started but is not healthy")
