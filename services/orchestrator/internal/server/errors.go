package server

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/queue"
)

// rules map the orchestrator's domain errors to gRPC codes at the edge.
var rules = []grpcerr.Rule{
	{Target: queue.ErrFull, Code: codes.ResourceExhausted},
	{Target: jobs.ErrNotFound, Code: codes.NotFound},
	{Target: jobs.ErrCancelled, Code: codes.Canceled},
	{Target: jobs.ErrBadRequest, Code: codes.InvalidArgument},
	{Target: errUnknownHost, Code: codes.NotFound},
	{Target: place.ErrNoHost, Code: codes.FailedPrecondition},
	{Target: events.ErrSlowSubscriber, Code: codes.ResourceExhausted},
	{Target: events.ErrClosed, Code: codes.Unavailable},
}

var errUnknownHost = errors.New("unknown host")

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
