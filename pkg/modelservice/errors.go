package modelservice

import (
	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/modelstore"
)

// rules map the store's sentinels to gRPC codes and reasons (package httperr turns
// the codes into HTTP: InvalidArgument 400, NotFound 404, AlreadyExists and Aborted
// 409, PermissionDenied 403, FailedPrecondition and Unavailable 503, DataLoss 500).
// Order matters: a canceled download wraps its cause.
var rules = []grpcerr.Rule{
	{Target: modelstore.ErrCanceled, Code: codes.Canceled, Reason: "DOWNLOAD_CANCELLED"},
	{Target: modelstore.ErrNotFound, Code: codes.NotFound, Reason: "MODEL_NOT_FOUND"},
	{Target: modelstore.ErrInvalidID, Code: codes.InvalidArgument, Reason: "INVALID_MODEL_ID"},
	{Target: modelstore.ErrInvalidArgument, Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT"},
	{Target: modelstore.ErrInvalidURL, Code: codes.InvalidArgument, Reason: "INVALID_SOURCE_URL"},
	{Target: modelstore.ErrUnsafeFileName, Code: codes.InvalidArgument, Reason: "UNSAFE_FILE_NAME"},
	{Target: modelstore.ErrAlreadyExists, Code: codes.AlreadyExists, Reason: "MODEL_EXISTS"},
	{Target: modelstore.ErrDownloadInProgress, Code: codes.Aborted, Reason: "DOWNLOAD_IN_PROGRESS"},
	{Target: modelstore.ErrInsufficientSpace, Code: codes.FailedPrecondition, Reason: "INSUFFICIENT_SPACE"},
	{Target: modelstore.ErrInUse, Code: codes.FailedPrecondition, Reason: "MODEL_IN_USE"},
	{Target: modelstore.ErrChecksumMismatch, Code: codes.DataLoss, Reason: "CHECKSUM_MISMATCH"},
	{Target: modelstore.ErrCorruptRecord, Code: codes.DataLoss, Reason: "CORRUPT_RECORD"},
	{Target: modelstore.ErrInterrupted, Code: codes.Unavailable, Reason: "DOWNLOAD_INTERRUPTED"},
	{Target: modelstore.ErrSourceNotFound, Code: codes.NotFound, Reason: "SOURCE_NOT_FOUND"},
	{Target: modelstore.ErrSourceUnauthorized, Code: codes.PermissionDenied, Reason: "SOURCE_UNAUTHORIZED"},
	{Target: modelstore.ErrSourceUnavailable, Code: codes.Unavailable, Reason: grpcerr.ReasonSourceUnavailable},
	{Target: modelstore.ErrSourceRejected, Code: codes.FailedPrecondition, Reason: "SOURCE_REJECTED"},
}

func toStatus(err error) error { return grpcerr.Status(err, rules...) }
