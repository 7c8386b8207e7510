package service

import (
	"errors"
	"time"

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
	// ErrRemoteBind: a Start or Restart asks llama-server to listen on a
	// non-loopback address, and the operator did not allow it.
	ErrRemoteBind = errors.New("llama-server binds loopback only")
)

// rules map domain errors to gRPC codes and reasons (first match wins); a retry delay
// where the same request may succeed soon.
var rules = []grpcerr.Rule{
	{Target: ErrRemoteBind, Code: codes.PermissionDenied, Reason: "ENGINE_REMOTE_BIND_NOT_ALLOWED"},
	{Target: ErrInvalidConfig, Code: codes.InvalidArgument, Reason: "INVALID_CONFIG"},
	{Target: ErrInvalidRequest, Code: codes.InvalidArgument, Reason: "INVALID_REQUEST"},
	{Target: modelstore.ErrInvalidID, Code: codes.InvalidArgument, Reason: "INVALID_MODEL_ID"},
	{Target: ErrModelNotFound, Code: codes.NotFound, Reason: "MODEL_NOT_FOUND"},
	{Target: supervisor.ErrAlreadyRunning, Code: codes.FailedPrecondition, Reason: "ENGINE_ALREADY_RUNNING"},
	{Target: ErrStartInProgress, Code: codes.FailedPrecondition, Reason: "START_IN_PROGRESS", RetryAfter: 2 * time.Second},
	{Target: supervisor.ErrPortInUse, Code: codes.FailedPrecondition, Reason: "PORT_IN_USE"},
	{Target: llamabin.ErrNotFound, Code: codes.FailedPrecondition, Reason: "NO_ENGINE_BINARY"},
	{Target: errEngineUnusable, Code: codes.FailedPrecondition, Reason: "ENGINE_UNUSABLE"},
	{Target: supervisor.ErrNotRunning, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonEngineNotRunning},
	{Target: supervisor.ErrExitedDuringStart, Code: codes.Unavailable, Reason: "EXITED_DURING_START"},
	{Target: supervisor.ErrStartTimeout, Code: codes.DeadlineExceeded, Reason: "START_TIMEOUT"},
	{Target: supervisor.ErrStartAborted, Code: codes.Aborted, Reason: "START_ABORTED"},
	{Target: supervisor.ErrClosed, Code: codes.Unavailable, Reason: grpcerr.ReasonShuttingDown},
	{Target: ErrNotRunning, Code: codes.Unavailable, Reason: grpcerr.ReasonEngineNotRunning},
	{Target: ErrWaitTimeout, Code: codes.Unavailable, Reason: "WAIT_TIMEOUT", RetryAfter: 5 * time.Second},
	{Target: ErrInterrupted, Code: codes.Unavailable, Reason: "ENGINE_WENT_AWAY", RetryAfter: 2 * time.Second},
}

// errEngineUnusable: the configured llama-server path is not an executable.
var errEngineUnusable = errors.New("llama-server is not usable")

// toStatus converts err to a gRPC status error.
func toStatus(err error) error { return grpcerr.Status(err, rules...) }
