package server

import (
	"context"

	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
)

// SubmitJob queues an async job.
func (s *Service) SubmitJob(ctx context.Context, req *orchestratorv1.SubmitJobRequest) (*orchestratorv1.SubmitJobResponse, error) {
	pin, err := s.resolveHost(req.GetHost())
	if err != nil {
		return nil, errStatus(err)
	}
	if err := s.supported(ctx, req.GetParams(), pin); err != nil {
		return nil, errStatus(err)
	}
	j, err := s.jobs.Submit(req.GetParams(), pin)
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.SubmitJobResponse{Job: j}, nil
}

// GetJob returns a job.
func (s *Service) GetJob(_ context.Context, req *orchestratorv1.GetJobRequest) (*orchestratorv1.GetJobResponse, error) {
	j, err := s.jobs.Get(req.GetId(), req.GetIncludeImage())
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.GetJobResponse{Job: j}, nil
}

// WatchJob streams a job until it ends; the last message carries the image on success.
func (s *Service) WatchJob(req *orchestratorv1.WatchJobRequest, stream orchestratorv1.OrchestratorService_WatchJobServer) error {
	err := s.jobs.Watch(stream.Context(), req.GetId(), false, func(u jobs.Update) error {
		j := u.Job
		if u.Final && u.Result != nil {
			j = proto.Clone(j).(*orchestratorv1.Job)
			j.Result = u.Result
		}
		return stream.Send(&orchestratorv1.WatchJobResponse{Job: j, Event: u.Event})
	})
	return errStatus(err)
}

// CancelJob cancels a job and answers once it has ended (jobs.Manager.CancelAndWait): a
// queued or running job answers CANCELLED, never RUNNING, so the caller can rely on the
// answer; a job that ended first answers its end.
func (s *Service) CancelJob(ctx context.Context, req *orchestratorv1.CancelJobRequest) (*orchestratorv1.CancelJobResponse, error) {
	j, err := s.jobs.CancelAndWait(ctx, req.GetId())
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.CancelJobResponse{Job: j}, nil
}

// ListJobs lists jobs, newest first.
func (s *Service) ListJobs(_ context.Context, req *orchestratorv1.ListJobsRequest) (*orchestratorv1.ListJobsResponse, error) {
	list, next, err := s.jobs.List(int(req.GetPageSize()), req.GetPageToken(), req.GetStatus())
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.ListJobsResponse{Jobs: list, NextPageToken: next}, nil
}

// DeleteJob deletes a job and its image.
func (s *Service) DeleteJob(_ context.Context, req *orchestratorv1.DeleteJobRequest) (*orchestratorv1.DeleteJobResponse, error) {
	if err := s.jobs.Delete(req.GetId()); err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.DeleteJobResponse{}, nil
}
