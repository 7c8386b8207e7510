package modelservice

import (
	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/modelstore"
)

// rules map the store's sentinels to gRPC codes (grpc-gateway turns them into
// HTTP: InvalidArgument and FailedPrecondition 400, NotFound 404,
// AlreadyExists and Aborted 409, PermissionDenied 403, Unavailable 503,
// DataLoss 500). Order matters: a canceled download wraps its cause.
var rules = []grpcerr.Rule{
	{Target: modelstore.ErrCanceled, Code: codes.Canceled},
	{Target: modelstore.ErrNotFound, Code: codes.NotFound},
	{Target: modelstore.ErrInvalidID, Code: codes.InvalidArgument},
	{Target: modelstore.ErrInvalidArgument, Code: codes.InvalidArgument},
	{Target: modelstore.ErrInvalidURL, Code: codes.InvalidArgument},
	{Target: modelstore.ErrUnsafeFileName, Code: codes.InvalidArgument},
	{Target: modelstore.ErrAlreadyExists, Code: codes.AlreadyExists},
	{Target: modelstore.ErrDownloadInProgress, Code: codes.Aborted},
	{Target: modelstore.ErrInsufficientSpace, Code: codes.FailedPrecondition},
	{Target: modelstore.ErrInUse, Code: codes.FailedPrecondition},
	{Target: modelstore.ErrChecksumMismatch, Code: codes.DataLoss},
	{Target: modelstore.ErrCorruptRecord, Code: codes.DataLoss},
	{Target: modelstore.ErrInterrupted, Code: codes.Unavailable},
	{Target: modelstore.ErrSourceNotFound, Code: codes.NotFound},
	{Target: modelstore.ErrSourceUnauthorized, Code: codes.PermissionDenied},
	{Target: modelstore.ErrSourceUnavailable, Code: codes.Unavailable},
	{Target: modelstore.ErrSourceRejected, Code: codes.FailedPrecondition},
}

func toStatus(err error) error { return grpcerr.Status(err, rules...) }
