// Package grpcerr turns domain errors into gRPC status errors at a server's edge.
//
// Services keep their errors as sentinels or types wrapped with %w and call Status
// only where a handler returns, with a table that names the gRPC code of each
// sentinel, a stable reason and, for a refusal that is worth retrying (queue full,
// engine busy), a retry delay. The status carries them across the wire as
// google.rpc.ErrorInfo (reason, domain "genailab") and google.rpc.RetryInfo, so that a
// client branches on Reason(err) instead of the message text, and an HTTP edge (package
// httperr) sends Retry-After from the server's own delay. package httperr maps the
// codes to HTTP statuses.
package grpcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Domain is the ErrorInfo domain of genailab's errors.
const Domain = "genailab"

// Reasons that clients branch on. A rule without a Reason gets its code's name
// (CodeName), so every status made here carries one.
const (
	// ReasonCanceled: the work was cancelled (context.Canceled), by the caller or on the
	// server (CancelGeneration, a job cancelled by another client).
	ReasonCanceled = "CANCELLED"
	// ReasonDeadline: a deadline passed (context.DeadlineExceeded).
	ReasonDeadline = "DEADLINE_EXCEEDED"
	// ReasonInvalid: the request is malformed (an *Invalid).
	ReasonInvalid = "INVALID_ARGUMENT"
	// ReasonInternal: an error no rule names.
	ReasonInternal = "INTERNAL"
	// ReasonQueueFull: the orchestrator's image queue is full; retry after the delay.
	ReasonQueueFull = "QUEUE_FULL"
	// ReasonEngineBusy: the diffusion engine is generating another image (the seed's
	// "Server is busy generating another image"); retry after the delay.
	ReasonEngineBusy = "ENGINE_BUSY"
	// ReasonEngineNotRunning: the engine is stopped and must be started first.
	ReasonEngineNotRunning = "ENGINE_NOT_RUNNING"
	// ReasonEngineStopped: the engine was stopped (Stop, a shutdown) while it served the
	// request.
	ReasonEngineStopped = "ENGINE_STOPPED"
	// ReasonShuttingDown: the service is shutting down.
	ReasonShuttingDown = "SHUTTING_DOWN"
	// ReasonSourceUnavailable: the service was reached, but the source it downloads a
	// model from was not (no network, a name that does not resolve, a 5xx answer).
	ReasonSourceUnavailable = "SOURCE_UNAVAILABLE"
	// ReasonUnsupportedInMode: the request asks for a feature the engine's mode lacks
	// (previews in sd-server mode), on every host that could take it; the message names the
	// mode. FailedPrecondition over gRPC, but HTTP 400 (package httperr): the same request
	// fails again until an operator changes the engine's mode.
	ReasonUnsupportedInMode = "UNSUPPORTED_IN_MODE"
)

// Rule maps every error that errors.Is Target to Code, with Reason (default: the
// code's name) and, when RetryAfter is positive, a RetryInfo with that delay.
type Rule struct {
	Target error
	Code   codes.Code
	// Reason is the stable ErrorInfo reason, UPPER_SNAKE_CASE ("QUEUE_FULL").
	Reason string
	// RetryAfter, when positive, says the same request may succeed after this delay.
	RetryAfter time.Duration
}

// Coder is implemented by domain error types that know their gRPC code.
type Coder interface {
	GRPCCode() codes.Code
}

// Info is what Status puts on the wire for an error.
type Info struct {
	Code       codes.Code
	Reason     string
	Message    string
	RetryAfter time.Duration // 0: no RetryInfo
}

// CodeName is the canonical name of c ("INVALID_ARGUMENT", as google.rpc.Code spells it).
func CodeName(c codes.Code) string {
	if n, ok := code.Code_name[int32(c)]; ok {
		return n
	}
	return "UNKNOWN"
}

// Status converts err to a gRPC status error. nil stays nil. An error that already
// carries a status (from a gRPC call further down) keeps it, with its reason, retry delay
// and other details. Context cancellation and deadlines become Canceled and
// DeadlineExceeded. Otherwise the first matching rule, then a Coder in the chain, decide;
// anything else is Internal. The message is err's text, which carries the context the
// error was wrapped with.
func Status(err error, rules ...Rule) error {
	if err == nil {
		return nil
	}
	return newStatus(Classify(err, rules...), detailsBelow(err))
}

// New makes the status error of in: code, message, an ErrorInfo with in.Reason (default
// the code's name) and, when in.RetryAfter is positive, a RetryInfo.
func New(in Info) error { return newStatus(in, nil) }

func newStatus(in Info, other []*anypb.Any) error {
	if in.Code == codes.OK {
		return nil
	}
	reason := in.Reason
	if reason == "" {
		reason = CodeName(in.Code)
	}
	p := &spb.Status{Code: int32(in.Code), Message: in.Message}
	add := func(m proto.Message) {
		if a, err := anypb.New(m); err == nil {
			p.Details = append(p.Details, a)
		}
	}
	add(&errdetails.ErrorInfo{Reason: reason, Domain: Domain})
	if in.RetryAfter > 0 {
		add(&errdetails.RetryInfo{RetryDelay: durationpb.New(in.RetryAfter)})
	}
	p.Details = append(p.Details, other...)
	return status.FromProto(p).Err()
}

// Errorf is New with a formatted message: a status error with reason, for code that
// makes a refusal itself (reason "" is the code's name).
func Errorf(c codes.Code, reason, format string, args ...any) error {
	return New(Info{Code: c, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// Message is err's text, with the "rpc error: code = X desc = " prefix of a gRPC status
// error somewhere in its chain removed, so that a message passed on through several
// services reads "generate on diffusion service: engine is not running", not the
// status' Go formatting.
func Message(err error) string {
	msg := err.Error()
	if s, ok := below(err); ok && s.Code() != codes.OK {
		msg = strings.Replace(msg, s.Err().Error(), s.Message(), 1)
	}
	return msg
}

// Code returns the gRPC code Status would use for err.
func Code(err error, rules ...Rule) codes.Code {
	if err == nil {
		return codes.OK
	}
	return Classify(err, rules...).Code
}

// Classify says what Status would send for err (err must not be nil).
func Classify(err error, rules ...Rule) Info {
	in := Info{Message: Message(err)}
	for _, r := range rules {
		if errors.Is(err, r.Target) {
			in.Code, in.Reason, in.RetryAfter = r.Code, r.Reason, r.RetryAfter
			return withReason(in)
		}
	}
	var c Coder
	if errors.As(err, &c) {
		in.Code = c.GRPCCode()
		return withReason(in)
	}
	if s, ok := below(err); ok && s.Code() != codes.Unknown && s.Code() != codes.OK {
		in.Code = s.Code()
		in.Reason, in.RetryAfter = details(s)
		return withReason(in)
	}
	switch {
	case errors.Is(err, context.Canceled):
		in.Code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		in.Code = codes.DeadlineExceeded
	default:
		in.Code = codes.Internal
	}
	return withReason(in)
}

func withReason(in Info) Info {
	if in.Reason == "" {
		in.Reason = CodeName(in.Code)
	}
	return in
}

// Reason is the ErrorInfo reason of the gRPC status in err's chain ("" when there is
// none: a status made by the gRPC client itself, for example for the caller's own
// cancellation, or by a server that sends no ErrorInfo).
func Reason(err error) string {
	s, ok := below(err)
	if !ok {
		return ""
	}
	r, _ := details(s)
	return r
}

// RetryDelay is the RetryInfo delay of the gRPC status in err's chain (0: none).
func RetryDelay(err error) time.Duration {
	s, ok := below(err)
	if !ok {
		return 0
	}
	_, d := details(s)
	return d
}

// below is the status of a gRPC error in err's chain.
func below(err error) (*status.Status, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return nil, false
	}
	s := se.GRPCStatus()
	return s, s != nil
}

func details(s *status.Status) (reason string, retry time.Duration) {
	for _, d := range s.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if reason == "" {
				reason = d.GetReason()
			}
		case *errdetails.RetryInfo:
			if rd := d.GetRetryDelay(); rd != nil && retry == 0 {
				retry = rd.AsDuration()
			}
		}
	}
	return reason, retry
}

// detailsBelow are the details of the status in err's chain other than ErrorInfo and
// RetryInfo (which Classify already read), so that they pass through.
func detailsBelow(err error) []*anypb.Any {
	s, ok := below(err)
	if !ok {
		return nil
	}
	var out []*anypb.Any
	for _, d := range s.Proto().GetDetails() {
		if d.MessageIs((*errdetails.ErrorInfo)(nil)) || d.MessageIs((*errdetails.RetryInfo)(nil)) {
			continue
		}
		out = append(out, d)
	}
	return out
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
