package service

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Domain errors of the service. They become gRPC codes only in toStatus.
var (
	// ErrInvalidConfig: the LLMConfig is unusable.
	ErrInvalidConfig = errors.New("invalid llm config")
	// ErrModelNotFound: the model id is not in the store.
	ErrModelNotFound = errors.New("model not found")
	// ErrInvalidRequest: a chat or log request is malformed.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotRunning: chat while the server is stopped (not for an offload)
	// or crashed without a pending restart.
	ErrNotRunning = errors.New("llm server is not running")
	// ErrWaitTimeout: chat waited for an offloaded or starting server and
	// it did not come back in time.
	ErrWaitTimeout = errors.New("llm server did not come back in time")
	// ErrInterrupted: the server stopped or crashed while serving a chat.
	ErrInterrupted = errors.New("llm server went away during the request")
	// ErrStartInProgress: Start or Restart while another is in progress.
	ErrStartInProgress = errors.New("a start is already in progress")
)

// rules map domain errors to gRPC codes (first match wins).
var rules = []grpcerr.Rule{
	{Target: ErrInvalidConfig, Code: codes.InvalidArgument},
	{Target: ErrInvalidRequest, Code: codes.InvalidArgument},
	{Target: modelstore.ErrInvalidID, Code: codes.InvalidArgument},
	{Target: ErrModelNotFound, Code: codes.NotFound},
	{Target: supervisor.ErrAlreadyRunning, Code: codes.FailedPrecondition},
	{Target: ErrStartInProgress, Code: codes.FailedPrecondition},
	{Target: supervisor.ErrPortInUse, Code: codes.FailedPrecondition},
	{Target: llamabin.ErrNotFound, Code: codes.FailedPrecondition},
	{Target: errEngineUnusable, Code: codes.FailedPrecondition},
	{Target: supervisor.ErrNotRunning, Code: codes.FailedPrecondition},
	{Target: supervisor.ErrExitedDuringStart, Code: codes.Unavailable},
	{Target: supervisor.ErrStartTimeout, Code: codes.DeadlineExceeded},
	{Target: supervisor.ErrStartAborted, Code: codes.Aborted},
	{Target: supervisor.ErrClosed, Code: codes.Unavailable},
	{Target: ErrNotRunning, Code: codes.Unavailable},
	{Target: ErrWaitTimeout, Code: codes.Unavailable},
	{Target: ErrInterrupted, Code: codes.Unavailable},
}

// errEngineUnusable: the configured llama-server path is not an executable.
var errEngineUnusable = errors.New("llama-server is not usable")

// toStatus converts err to a gRPC status error.
func toStatus(err error) error { return grpcerr.Status(err, rules...) }
