package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	"github.com/genailab/genailab/pkg/grpcerr"
)

// message turns an error into the one line genaictl prints: a service's own message for
// a gRPC status, where to look for an unreachable service, and what happened to a job
// that was interrupted. Line breaks (an engine's log tail) are folded into " | ".
func (a *App) message(err error) string {
	var je *genailab.JobError
	var msg string
	switch {
	case errors.As(err, &je) && je.Abandoned:
		if je.CancelErr != nil {
			msg = fmt.Sprintf("interrupted; cancelling job %s on the server failed: %s", je.JobID, statusText(je.CancelErr))
		} else {
			msg = fmt.Sprintf("interrupted; job %s cancelled on the server", je.JobID)
		}
	case errors.As(err, &je):
		msg = fmt.Sprintf("job %s: %s", je.JobID, statusText(je.Err))
	default:
		msg = statusText(err)
	}
	return oneLine(msg)
}

// statusText is the message of a gRPC status error (without Go's "rpc error: code = ..."
// wrapping), with advice for a service that cannot be reached.
func statusText(err error) string {
	if interrupted(err) {
		return "interrupted"
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return err.Error()
	}
	s := se.GRPCStatus()
	msg := s.Message()
	// Keep any context the error was wrapped with ("llm service at ...: ").
	if full := err.Error(); full != s.Err().Error() {
		msg = strings.Replace(full, s.Err().Error(), msg, 1)
	}
	switch s.Code() {
	case codes.Unauthenticated:
		return msg + " (see --token or GENAILAB_TOKEN)"
	case codes.DeadlineExceeded:
		if msg == "" {
			return "timed out"
		}
	}
	if msg == "" {
		return s.Code().String()
	}
	return msg
}

// at names the service a failed call went to, so that connection errors say where. Only a
// status the gRPC client made itself (one without an ErrorInfo reason) can mean that the
// service was not reached: an Unavailable that the service sent (with its reason) is its
// answer, whatever its message says, and is reported as the service's own words.
func (a *App) at(svc genailab.Service, err error) error {
	if err == nil || a.client == nil {
		return err
	}
	if status.Code(err) != codes.Unavailable {
		return err
	}
	switch grpcerr.Reason(err) {
	case "":
	case grpcerr.ReasonSourceUnavailable:
		return fmt.Errorf("the %s service at %s cannot reach the download source: %w", svc, a.client.Addr(svc), err)
	default:
		return err
	}
	msg := status.Convert(err).Message()
	for _, cause := range []string{"connection refused", "no such host", "i/o timeout", "network is unreachable", "certificate", "handshake"} {
		if strings.Contains(msg, cause) {
			return fmt.Errorf("cannot reach the %s service at %s: %s (is genailab running there? see --addr and genaictl --help)", svc, a.client.Addr(svc), cause)
		}
	}
	return fmt.Errorf("%s service at %s: %w", svc, a.client.Addr(svc), err)
}

// oneLine folds line breaks and strips control characters.
func oneLine(s string) string {
	lines := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = termui.SanitizeLine(strings.TrimSpace(l))
	}
	return strings.Join(lines, " | ")
}

// interrupted reports a cancellation, told by the ErrorInfo reason, not by the message: the
// command's own (Ctrl-C: the context's error, or the Canceled status the gRPC client makes
// of it, which carries no ErrorInfo) or a context cancelled on the server (reason
// CANCELLED). Work that someone else cancelled on the server has its own reason
// (JOB_CANCELLED, DOWNLOAD_CANCELLED) and is reported with the server's message.
func interrupted(err error) bool {
	if errors.Is(err, context.Canceled) {
		return true
	}
	if status.Code(err) != codes.Canceled {
		return false
	}
	r := grpcerr.Reason(err)
	return r == "" || r == grpcerr.ReasonCanceled
}

// isCanceled reports an error caused by the command's own cancellation (Ctrl-C).
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}
