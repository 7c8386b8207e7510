package modelstore

import (
	"errors"
	"fmt"
	"net/http"
)

// Domain errors. Callers test them with errors.Is; the gRPC edge maps them to
// status codes.
var (
	ErrNotFound           = errors.New("model not found")
	ErrAlreadyExists      = errors.New("model already exists")
	ErrInvalidID          = errors.New("invalid model id")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrInvalidURL         = errors.New("invalid source url")
	ErrUnsafeFileName     = errors.New("unsafe file name")
	ErrChecksumMismatch   = errors.New("checksum mismatch")
	ErrInsufficientSpace  = errors.New("insufficient disk space")
	ErrInUse              = errors.New("model is in use")
	ErrDownloadInProgress = errors.New("download already in progress")
	ErrNoDownload         = errors.New("no download in progress")
	ErrCanceled           = errors.New("download canceled")
	ErrInterrupted        = errors.New("download interrupted")
	ErrCorruptRecord      = errors.New("corrupt model record")
	// ErrOutsideStore is a path of the store that leads out of it: a symbolic link
	// planted in the store, to a file or directory outside. The store never reads
	// or writes through such a link.
	ErrOutsideStore = errors.New("path leads out of the model store (a symbolic link to outside it?)")

	// Errors from the remote source, carried by *SourceError.
	ErrSourceNotFound     = errors.New("source file not found")
	ErrSourceUnauthorized = errors.New("source refused access")
	ErrSourceUnavailable  = errors.New("source unavailable")
	ErrSourceRejected     = errors.New("source rejected the request")
)

// SourceError is an unexpected HTTP status from a download source. It matches
// one of the ErrSource* sentinels with errors.Is.
type SourceError struct {
	StatusCode int
	URL        string // without query string: it may hold signed credentials
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s from %s", e.kind(), e.StatusCode, http.StatusText(e.StatusCode), e.URL)
}

func (e *SourceError) kind() error {
	switch {
	case e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusGone:
		return ErrSourceNotFound
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		return ErrSourceUnauthorized
	case e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500:
		return ErrSourceUnavailable
	default:
		return ErrSourceRejected
	}
}

// Is makes errors.Is(err, ErrSourceNotFound) and friends work.
func (e *SourceError) Is(target error) bool { return target == e.kind() }

// Temporary reports whether retrying later may succeed.
func (e *SourceError) Temporary() bool { return e.kind() == ErrSourceUnavailable }
