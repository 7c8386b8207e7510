package genailab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// Event is one message of an image's life in the orchestrator; exactly one field is set.
type Event struct {
	// JobID comes first: the job the orchestrator queued.
	JobID string
	// Queue is the job's new place in the queue.
	Queue *orchestratorv1.QueuePosition
	// Event is an orchestration event (placement, offload, reload, ...).
	Event *orchestratorv1.Event
	// Progress is the engine's progress (stage, step).
	Progress *diffusionv1.Progress
}

// Result is a finished image.
type Result struct {
	// JobID is the orchestrator's job (see ListJobs, GetJob).
	JobID string
	// Image is the PNG with its seed and resolved parameters.
	Image *diffusionv1.ImageResult
}

// JobError is the error of a generation whose job was queued.
type JobError struct {
	// JobID is the job.
	JobID string
	// Err is what ended it: the server's status error, or the caller's context error.
	Err error
	// Abandoned is true when the caller's context ended the generation; the client then
	// cancelled the job on the server.
	Abandoned bool
	// CancelErr is the error of that CancelJob call, nil when it succeeded.
	CancelErr error
}

func (e *JobError) Error() string {
	if e.Abandoned {
		if e.CancelErr != nil {
			return fmt.Sprintf("job %s: %v; cancelling it on the server failed: %v", e.JobID, e.Err, e.CancelErr)
		}
		return fmt.Sprintf("job %s: %v (cancelled on the server)", e.JobID, e.Err)
	}
	return fmt.Sprintf("job %s: %v", e.JobID, e.Err)
}

func (e *JobError) Unwrap() error { return e.Err }

// cancelTimeout bounds the CancelJob call made after the caller gave up.
const cancelTimeout = 5 * time.Second

// GenerateImage generates one image through the orchestrator (queue, LLM offload and
// reload included) and calls onProgress (if not nil) for every message before the
// result, in order. When ctx ends first, the stream is closed and the job is cancelled
// on the server with CancelJob; the error is then a *JobError with Abandoned set that
// wraps ctx's error. Server errors keep their gRPC status (status.Code works on them).
func (c *Client) GenerateImage(ctx context.Context, params *diffusionv1.ImageParams, onProgress func(Event)) (*Result, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Orchestrator().GenerateImage(sctx, &orchestratorv1.GenerateImageRequest{Params: params})
	if err != nil {
		return nil, err
	}
	emit := func(e Event) {
		if onProgress != nil {
			onProgress(e)
		}
	}
	var jobID string
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the orchestrator ended the stream without an image")
			}
			if ctx.Err() != nil {
				if jobID == "" {
					return nil, ctx.Err()
				}
				return nil, c.abandon(ctx, jobID)
			}
			if jobID != "" {
				return nil, &JobError{JobID: jobID, Err: err}
			}
			return nil, err
		}
		switch p := msg.GetPayload().(type) {
		case *orchestratorv1.GenerateImageResponse_JobId:
			jobID = p.JobId
			emit(Event{JobID: jobID})
		case *orchestratorv1.GenerateImageResponse_Queue:
			emit(Event{Queue: p.Queue})
		case *orchestratorv1.GenerateImageResponse_Event:
			emit(Event{Event: p.Event})
		case *orchestratorv1.GenerateImageResponse_Progress:
			emit(Event{Progress: p.Progress})
		case *orchestratorv1.GenerateImageResponse_Result:
			return &Result{JobID: jobID, Image: p.Result}, nil
		}
	}
}

// abandon cancels a job whose caller gave up. The orchestrator cancels the job of a
// stream that goes away by itself; the explicit call makes it certain and reports it.
func (c *Client) abandon(ctx context.Context, jobID string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	_, err := c.Orchestrator().CancelJob(cctx, &orchestratorv1.CancelJobRequest{Id: jobID})
	return &JobError{JobID: jobID, Err: ctx.Err(), Abandoned: true, CancelErr: err}
}
