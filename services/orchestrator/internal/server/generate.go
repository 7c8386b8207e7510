package server

import (
	"context"
	"fmt"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/hosts"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
)

// resolveHost turns a request's host into the pin ("" lets the orchestrator place it):
// a known host's name, or with a single host also "local" and "localhost".
func (s *Service) resolveHost(host string) (string, error) {
	if host == "" {
		return "", nil
	}
	if s.single && (host == s.o.Host || host == LocalHost || host == "localhost") {
		return s.o.Host, nil
	}
	if _, err := s.reg.Get(host); err != nil {
		return "", fmt.Errorf("%w %q: the hosts are listed by ListHosts", hosts.ErrUnknownHost, host)
	}
	return host, nil
}

// supported refuses at the submit edge, before a job exists (no record, no QUEUED event,
// no offload), a request that no host's diffusion engine (or the pinned host's) can run in
// its mode: FailedPrecondition, reason UNSUPPORTED_IN_MODE, naming each host's mode and
// what it lacks. It reads the capabilities the hosts' health checks gathered (a refusal
// from facts over a second old checks those hosts again first: hosts.Registry.Supported).
// While no host's capabilities are known (none reached yet, engines stopped) it lets the
// request through, as before: the host's probe refuses it at run time, before its offload
// decision. The values are validated by Submit (probe.NeedsOf).
func (s *Service) supported(ctx context.Context, p *diffusionv1.ImageParams, pin string) error {
	return s.reg.Supported(ctx, probe.NeedsOf(p), pin)
}

// abandon cancels the job of a caller that went away.
func (s *Service) abandon(id string) {
	if _, err := s.jobs.Cancel(id); err != nil {
		s.log.Warn("cancel abandoned job", "job", id, "error", err)
	}
}

// GenerateImage queues an image and streams its life.
func (s *Service) GenerateImage(req *orchestratorv1.GenerateImageRequest, stream orchestratorv1.OrchestratorService_GenerateImageServer) error {
	pin, err := s.resolveHost(req.GetHost())
	if err != nil {
		return errStatus(err)
	}
	if err := s.supported(stream.Context(), req.GetParams(), pin); err != nil {
		return errStatus(err)
	}
	job, err := s.jobs.Submit(req.GetParams(), pin)
	if err != nil {
		return errStatus(err)
	}
	send := func(r *orchestratorv1.GenerateImageResponse) error { return stream.Send(r) }
	if err := send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_JobId{JobId: job.GetId()}}); err != nil {
		s.abandon(job.GetId())
		return err
	}
	var final jobs.Update
	err = s.jobs.Watch(stream.Context(), job.GetId(), true, func(u jobs.Update) error {
		if u.Queue != nil {
			if err := send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Queue{Queue: u.Queue}}); err != nil {
				return err
			}
		}
		if u.Event != nil {
			if err := send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Event{Event: u.Event}}); err != nil {
				return err
			}
		}
		if u.Progress != nil {
			if err := send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Progress{Progress: u.Progress}}); err != nil {
				return err
			}
		}
		if u.Final {
			final = u
		}
		return nil
	})
	if err != nil {
		// The client went away (or the stream broke): cancel its job; the cycle still
		// reloads the LLM.
		s.abandon(job.GetId())
		return errStatus(err)
	}
	if final.Result == nil {
		return errStatus(outcomeErr(final))
	}
	return send(&orchestratorv1.GenerateImageResponse{Payload: &orchestratorv1.GenerateImageResponse_Result{Result: final.Result}})
}
