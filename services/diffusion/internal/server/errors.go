package server

import (
	"time"

	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/modelfile"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// rules map the domain errors to gRPC codes and reasons (and, through package httperr, the
// seed wrapper's HTTP statuses). Cancellation and deadlines (enginerr.ErrStalled matches
// DeadlineExceeded) are handled by grpcerr itself.
var rules = []grpcerr.Rule{
	{Target: imagereq.ErrInvalid, Code: codes.InvalidArgument, Reason: "INVALID_IMAGE_PARAMS"},
	{Target: sdargs.ErrNoModel, Code: codes.InvalidArgument, Reason: "NO_MODEL"},
	{Target: modelstore.ErrInvalidID, Code: codes.InvalidArgument, Reason: "INVALID_MODEL_ID"},
	{Target: modelstore.ErrNotFound, Code: codes.NotFound, Reason: "MODEL_NOT_FOUND"},
	{Target: enginerr.ErrModelMissing, Code: codes.NotFound, Reason: "MODEL_FILE_MISSING"},
	{Target: modelfile.ErrInvalid, Code: codes.FailedPrecondition, Reason: "MODEL_FILE_INVALID"},
	{Target: enginerr.ErrBusy, Code: codes.Unavailable, Reason: grpcerr.ReasonEngineBusy, RetryAfter: 2 * time.Second},
	{Target: enginerr.ErrUnsupported, Code: codes.FailedPrecondition, Reason: ReasonUnsupported},
	{Target: enginerr.ErrNotRunning, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonEngineNotRunning},
	{Target: enginerr.ErrAlreadyRunning, Code: codes.FailedPrecondition, Reason: "ENGINE_ALREADY_RUNNING"},
	{Target: enginerr.ErrNoEngine, Code: codes.FailedPrecondition, Reason: "NO_ENGINE_BINARY"},
	{Target: ports.ErrPortInUse, Code: codes.FailedPrecondition, Reason: "PORT_IN_USE"},
	{Target: enginerr.ErrStalled, Code: codes.DeadlineExceeded, Reason: "ENGINE_STALLED"},
	{Target: supervisor.ErrStartTimeout, Code: codes.DeadlineExceeded, Reason: "START_TIMEOUT"},
	{Target: enginerr.ErrOutOfMemory, Code: codes.ResourceExhausted, Reason: "OUT_OF_MEMORY"},
}

// ReasonUnsupported: the request asks for a feature the engine's mode lacks (previews or edits
// in server mode); the message names the mode. The orchestrator may try a host that has it.
const ReasonUnsupported = grpcerr.ReasonUnsupportedInMode

func toStatus(err error) error { return grpcerr.Status(err, rules...) }
