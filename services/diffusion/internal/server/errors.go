package server

import (
	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/modelfile"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// rules map the domain errors to gRPC codes (and, through codeHTTP, the seed wrapper's HTTP
// statuses). Cancellation and deadlines (enginerr.ErrStalled matches DeadlineExceeded) are
// handled by grpcerr itself.
var rules = []grpcerr.Rule{
	{Target: imagereq.ErrInvalid, Code: codes.InvalidArgument},
	{Target: sdargs.ErrNoModel, Code: codes.InvalidArgument},
	{Target: modelstore.ErrInvalidID, Code: codes.InvalidArgument},
	{Target: modelstore.ErrNotFound, Code: codes.NotFound},
	{Target: enginerr.ErrModelMissing, Code: codes.NotFound},
	{Target: modelfile.ErrInvalid, Code: codes.FailedPrecondition},
	{Target: enginerr.ErrBusy, Code: codes.Unavailable},
	{Target: enginerr.ErrNotRunning, Code: codes.FailedPrecondition},
	{Target: enginerr.ErrAlreadyRunning, Code: codes.FailedPrecondition},
	{Target: enginerr.ErrNoEngine, Code: codes.FailedPrecondition},
	{Target: ports.ErrPortInUse, Code: codes.FailedPrecondition},
	{Target: enginerr.ErrStalled, Code: codes.DeadlineExceeded},
	{Target: supervisor.ErrStartTimeout, Code: codes.DeadlineExceeded},
	{Target: enginerr.ErrOutOfMemory, Code: codes.ResourceExhausted},
}

func toStatus(err error) error { return grpcerr.Status(err, rules...) }

func codeOf(err error) codes.Code { return grpcerr.Code(err, rules...) }
