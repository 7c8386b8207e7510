// Package relay turns the engine services' lifecycle streams (the LLM service's and the
// diffusion service's WatchInfo) into orchestrator events: started, stopped and crashed,
// with the numbers (pid, exit code). It follows each stream for as long as it runs,
// reconnecting with backoff when a service goes away.
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// Emitter records an event.
type Emitter interface {
	Emit(typ orchestratorv1.EventType, host, jobID, message string, values map[string]float64) *orchestratorv1.Event
}

// Relay follows the engine services.
type Relay struct {
	LLM       llmv1.LLMServiceClient
	Diffusion diffusionv1.DiffusionServiceClient
	Events    Emitter
	Host      string
	Log       *slog.Logger
	// Live, when set, keeps the streams' latest engine info (live.go).
	Live *Live
	// Backoff bounds the wait before reconnecting; default 500 ms to 10 s.
	BackoffMin, BackoffMax time.Duration
}

// Run follows both services until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	if r.BackoffMin <= 0 {
		r.BackoffMin = 500 * time.Millisecond
	}
	if r.BackoffMax <= 0 {
		r.BackoffMax = 10 * time.Second
	}
	done := make(chan struct{}, 2)
	go func() { r.follow(ctx, "LLM", r.followLLM); done <- struct{}{} }()
	go func() { r.follow(ctx, "diffusion", r.followDiffusion); done <- struct{}{} }()
	<-done
	<-done
}

// follow runs one stream again and again with backoff.
func (r *Relay) follow(ctx context.Context, name string, once func(context.Context) error) {
	backoff := r.BackoffMin
	for ctx.Err() == nil {
		start := time.Now()
		err := once(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > r.BackoffMax {
			backoff = r.BackoffMin // it ran fine for a while
		}
		r.Log.Debug("lifecycle stream ended; reconnecting", "service", name, "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.BackoffMax)
	}
}

func exitValues(e *commonv1.ProcessExit, pid int32) map[string]float64 {
	v := map[string]float64{}
	if pid > 0 {
		v["pid"] = float64(pid)
	}
	if e != nil {
		v["exit_code"] = float64(e.GetExitCode())
	}
	return v
}

func describe(what, msg string, e *commonv1.ProcessExit) string {
	s := what
	if e != nil {
		if e.GetSignal() != "" {
			s += fmt.Sprintf(" (killed by %s)", e.GetSignal())
		} else {
			s += fmt.Sprintf(" (exit code %d)", e.GetExitCode())
		}
	}
	if msg != "" {
		s += ": " + msg
	}
	return s + "."
}

func (r *Relay) followLLM(ctx context.Context) error {
	stream, err := r.LLM.WatchInfo(ctx, &llmv1.WatchInfoRequest{})
	if err != nil {
		return err
	}
	defer r.Live.setLLM(nil)
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		info := m.GetInfo()
		if info != nil {
			r.Live.setLLM(info)
		}
		switch m.GetType() {
		case llmv1.LLMEventType_LLM_EVENT_TYPE_READY, llmv1.LLMEventType_LLM_EVENT_TYPE_RESTARTED:
			r.Events.Emit(orchestratorv1.EventType_EVENT_TYPE_LLM_STARTED, r.Host, "",
				describe("The LLM server is ready ("+info.GetModelId()+")", m.GetMessage(), nil), exitValues(nil, info.GetPid()))
		case llmv1.LLMEventType_LLM_EVENT_TYPE_STOPPED:
			what := "The LLM server stopped"
			if info.GetOffloaded() {
				what = "The LLM server stopped for an offload"
			}
			r.Events.Emit(orchestratorv1.EventType_EVENT_TYPE_LLM_STOPPED, r.Host, "", describe(what, "", nil), exitValues(m.GetExit(), 0))
		case llmv1.LLMEventType_LLM_EVENT_TYPE_CRASHED:
			r.Events.Emit(orchestratorv1.EventType_EVENT_TYPE_LLM_CRASHED, r.Host, "", describe("The LLM server crashed", m.GetMessage(), m.GetExit()), exitValues(m.GetExit(), 0))
		}
	}
}

func (r *Relay) followDiffusion(ctx context.Context) error {
	stream, err := r.Diffusion.WatchInfo(ctx, &diffusionv1.WatchInfoRequest{})
	if err != nil {
		return err
	}
	defer r.Live.setDiffusion(nil)
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		info := m.GetInfo()
		if info != nil {
			r.Live.setDiffusion(info)
		}
		switch m.GetType() {
		case diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_STARTED:
			what := "The diffusion engine started (" + info.GetModelId() + ")"
			if info.GetDemoEngine() {
				what = "The diffusion engine started with the demo stand-in"
			}
			r.Events.Emit(orchestratorv1.EventType_EVENT_TYPE_DIFFUSION_STARTED, r.Host, "", describe(what, "", nil), exitValues(nil, info.GetPid()))
		case diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_STOPPED:
			r.Events.Emit(orchestratorv1.EventType_EVENT_TYPE_DIFFUSION_STOPPED, r.Host, "", describe("The diffusion engine stopped", "", nil), exitValues(m.GetExit(), 0))
		case diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_CRASHED:
			r.Events.Emit(orchestratorv1.EventType_EVENT_TYPE_DIFFUSION_CRASHED, r.Host, "", describe("The diffusion engine crashed", m.GetMessage(), m.GetExit()), exitValues(m.GetExit(), 0))
		}
	}
}
