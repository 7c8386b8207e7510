package server

import (
	"context"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
)

// WouldNeedOffload decides for an image without running it.
func (s *Service) WouldNeedOffload(ctx context.Context, req *orchestratorv1.WouldNeedOffloadRequest) (*orchestratorv1.WouldNeedOffloadResponse, error) {
	h, err := s.decisionHost(req.GetHost())
	if err != nil {
		return nil, errStatus(err)
	}
	p := req.GetParams()
	if p != nil && (p.Width != nil || p.Height != nil) {
		// Only the size matters here; check it with the same rules as a request (an
		// explicit 0 is refused, an unset side is the default).
		size := &diffusionv1.ImageParams{Prompt: "size check", Width: p.Width, Height: p.Height}
		if err := jobs.Validate(size); err != nil {
			return nil, errStatus(err)
		}
	}
	// The batch, an edit and full-size previews count too (probe.ImageOf).
	d, _, err := h.Prober.GatherAndDecideImage(ctx, probe.ImageOf(p))
	if err != nil {
		return nil, errStatus(err)
	}
	resp := d.Response()
	if resp.GetNeedsOffload() {
		// Learnt from the host's measured offload cycles (cycle/downtime.go).
		if down, ok := h.Cycle.ExpectedDown(p); ok {
			resp.ExpectedDownMs = proto.Int64(down.Milliseconds())
		}
	}
	return resp, nil
}

// GetSavedState returns the saved LLM states.
func (s *Service) GetSavedState(_ context.Context, req *orchestratorv1.GetSavedStateRequest) (*orchestratorv1.GetSavedStateResponse, error) {
	states, err := s.db.SavedStates(req.GetHost())
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.GetSavedStateResponse{States: states}, nil
}

// ClearSavedState forgets saved states.
func (s *Service) ClearSavedState(_ context.Context, req *orchestratorv1.ClearSavedStateRequest) (*orchestratorv1.ClearSavedStateResponse, error) {
	n, err := s.db.ClearSavedState(req.GetHost())
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.ClearSavedStateResponse{Cleared: int32(n)}, nil
}

// WatchEvents streams stored, then new, events.
func (s *Service) WatchEvents(req *orchestratorv1.WatchEventsRequest, stream orchestratorv1.OrchestratorService_WatchEventsServer) error {
	err := s.ev.Watch(stream.Context(), events.WatchOptions{
		SinceID: req.GetSinceId(), Backlog: int(req.GetBacklog()), Types: req.GetTypes(), Follow: req.GetFollow(),
	}, func(ev *orchestratorv1.Event) error {
		return stream.Send(&orchestratorv1.WatchEventsResponse{Event: ev})
	})
	if stream.Context().Err() != nil {
		return nil
	}
	return errStatus(err)
}
