// Package grpcerr turns domain errors into gRPC status errors at a server's edge.
//
// Services keep their errors as sentinels or types wrapped with %w and call Status
// only where a handler returns, with a table that names the gRPC code of each
// sentinel. Codes are chosen knowing grpc-gateway's HTTP mapping: InvalidArgument and
// FailedPrecondition are 400, NotFound 404, AlreadyExists and Aborted 409,
// ResourceExhausted 429, Unavailable 503, DeadlineExceeded 504.
package grpcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Rule maps every error that errors.Is Target to Code.
type Rule struct {
	Target error
	Code   codes.Code
}

// Coder is implemented by domain error types that know their gRPC code.
type Coder interface {
	GRPCCode() codes.Code
}

// Status converts err to a gRPC status error. nil stays nil. An error that already
// carries a status (from a gRPC call further down) keeps it. Context cancellation and
// deadlines become Canceled and DeadlineExceeded. Otherwise the first matching rule,
// then a Coder in the chain, decide; anything else is Internal. The message is err's
// text, which carries the context the error was wrapped with.
func Status(err error, rules ...Rule) error {
	if err == nil {
		return nil
	}
	return status.Error(Code(err, rules...), Message(err))
}

// Message is err's text, with the "rpc error: code = X desc = " prefix of a gRPC status
// error somewhere in its chain removed, so that a message passed on through several
// services reads "generate on diffusion service: engine is not running", not the
// status' Go formatting.
func Message(err error) string {
	msg := err.Error()
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if s := se.GRPCStatus(); s.Code() != codes.OK {
			msg = strings.Replace(msg, s.Err().Error(), s.Message(), 1)
		}
	}
	return msg
}

// Code returns the gRPC code Status would use for err.
func Code(err error, rules ...Rule) codes.Code {
	if err == nil {
		return codes.OK
	}
	for _, r := range rules {
		if errors.Is(err, r.Target) {
			return r.Code
		}
	}
	var c Coder
	if errors.As(err, &c) {
		return c.GRPCCode()
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s.Code()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	}
	return codes.Internal
}

// Invalid is an error in the request: it becomes InvalidArgument.
type Invalid struct{ Reason string }

func (e *Invalid) Error() string { return e.Reason }

// GRPCCode implements Coder.
func (e *Invalid) GRPCCode() codes.Code { return codes.InvalidArgument }

// Invalidf returns an *Invalid with a formatted reason.
func Invalidf(format string, args ...any) error {
	return &Invalid{Reason: fmt.Sprintf(format, args...)}
}
