package server

import (
	"errors"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/hosts"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/queue"
)

// rules map the orchestrator's domain errors to gRPC codes and reasons at the edge (a full
// queue says when to retry).
var rules = []grpcerr.Rule{
	{Target: queue.ErrFull, Code: codes.ResourceExhausted, Reason: grpcerr.ReasonQueueFull, RetryAfter: 2 * time.Second},
	{Target: jobs.ErrNotFound, Code: codes.NotFound, Reason: "JOB_NOT_FOUND"},
	{Target: jobs.ErrCancelled, Code: codes.Canceled, Reason: "JOB_CANCELLED"},
	{Target: jobs.ErrBadRequest, Code: codes.InvalidArgument, Reason: "INVALID_JOB_REQUEST"},
	{Target: hosts.ErrUnknownHost, Code: codes.NotFound, Reason: "UNKNOWN_HOST"},
	{Target: place.ErrNoHost, Code: codes.FailedPrecondition, Reason: "NO_HOST"},
	{Target: probe.ErrUnsupported, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonUnsupportedInMode},
	{Target: events.ErrSlowSubscriber, Code: codes.ResourceExhausted, Reason: "SLOW_SUBSCRIBER"},
	{Target: events.ErrClosed, Code: codes.Unavailable, Reason: grpcerr.ReasonShuttingDown},
}

func errStatus(err error) error { return grpcerr.Status(err, rules...) }

// outcomeErr is the error of a job's final update.
func outcomeErr(u jobs.Update) error {
	if u.Err != nil {
		return u.Err
	}
	if u.Job.GetError() != "" {
		return errors.New(u.Job.GetError())
	}
	return errors.New("the job ended without an image")
}
