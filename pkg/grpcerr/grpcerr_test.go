package grpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/genailab/genailab/pkg/grpcerr"
)

var errBusy = errors.New("busy")

func TestCode(t *testing.T) {
	rules := []grpcerr.Rule{{Target: errBusy, Code: codes.Unavailable}}
	cases := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nil", nil, codes.OK},
		{"wrapped sentinel", fmt.Errorf("generate: %w", errBusy), codes.Unavailable},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), codes.Canceled},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"invalid", fmt.Errorf("check: %w", grpcerr.Invalidf("width %d is not a multiple of 64", 60)), codes.InvalidArgument},
		{"status from below", fmt.Errorf("call llm: %w", status.Error(codes.NotFound, "no model")), codes.NotFound},
		{"plain", errors.New("boom"), codes.Internal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := grpcerr.Code(c.err, rules...); got != c.want {
				t.Fatalf("Code(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestStatusKeepsMessage(t *testing.T) {
	err := grpcerr.Status(fmt.Errorf("start llama-server: %w", errBusy), grpcerr.Rule{Target: errBusy, Code: codes.Unavailable})
	s := status.Convert(err)
	if s.Code() != codes.Unavailable || s.Message() != "start llama-server: busy" {
		t.Fatalf("got %v %q", s.Code(), s.Message())
	}
	if grpcerr.Status(nil) != nil {
		t.Fatal("Status(nil) must be nil")
	}
}

func TestStatusOfWrappedStatusHasNoGoFormatting(t *testing.T) {
	below := status.Error(codes.FailedPrecondition, "diffusion engine is not running")
	s := status.Convert(grpcerr.Status(fmt.Errorf("generate on diffusion service: %w", below)))
	if s.Code() != codes.FailedPrecondition || s.Message() != "generate on diffusion service: diffusion engine is not running" {
		t.Fatalf("got %v %q", s.Code(), s.Message())
	}
}

func TestStatusCarriesReasonAndRetryInfo(t *testing.T) {
	rule := grpcerr.Rule{Target: errBusy, Code: codes.Unavailable, Reason: "ENGINE_BUSY", RetryAfter: 3 * time.Second}
	err := grpcerr.Status(fmt.Errorf("generate: %w", errBusy), rule)
	s := status.Convert(err)
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range s.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	if info == nil || info.Reason != "ENGINE_BUSY" || info.Domain != grpcerr.Domain {
		t.Fatalf("ErrorInfo %v", info)
	}
	if retry == nil || retry.RetryDelay.AsDuration() != 3*time.Second {
		t.Fatalf("RetryInfo %v", retry)
	}
	if grpcerr.Reason(err) != "ENGINE_BUSY" || grpcerr.RetryDelay(err) != 3*time.Second {
		t.Fatalf("Reason %q RetryDelay %v", grpcerr.Reason(err), grpcerr.RetryDelay(err))
	}
}

func TestDefaultReasonIsTheCodeName(t *testing.T) {
	cases := map[error]string{
		grpcerr.Status(errBusy, grpcerr.Rule{Target: errBusy, Code: codes.FailedPrecondition}): "FAILED_PRECONDITION",
		grpcerr.Status(fmt.Errorf("wait: %w", context.Canceled)):                               grpcerr.ReasonCanceled,
		grpcerr.Status(fmt.Errorf("wait: %w", context.DeadlineExceeded)):                       grpcerr.ReasonDeadline,
		grpcerr.Status(grpcerr.Invalidf("bad")):                                                grpcerr.ReasonInvalid,
		grpcerr.Status(errors.New("boom")):                                                     grpcerr.ReasonInternal,
	}
	for err, want := range cases {
		if got := grpcerr.Reason(err); got != want {
			t.Errorf("%v: reason %q, want %q", err, got, want)
		}
		if grpcerr.RetryDelay(err) != 0 {
			t.Errorf("%v: a retry delay no rule asked for", err)
		}
	}
}

// A service that passes a backend's error on (the orchestrator relaying the diffusion
// service's refusal) keeps its reason and retry delay, so that the gateway's Retry-After is
// the diffusion service's.
func TestStatusFromBelowKeepsReasonAndRetryDelay(t *testing.T) {
	below := grpcerr.Status(errBusy, grpcerr.Rule{Target: errBusy, Code: codes.Unavailable, Reason: "ENGINE_BUSY", RetryAfter: 4 * time.Second})
	relayed := grpcerr.Status(fmt.Errorf("ask diffusion service: %w", below))
	again := grpcerr.Status(fmt.Errorf("job j1: %w", relayed))
	s := status.Convert(again)
	if s.Code() != codes.Unavailable || s.Message() != "job j1: ask diffusion service: busy" {
		t.Fatalf("got %v %q", s.Code(), s.Message())
	}
	if grpcerr.Reason(again) != "ENGINE_BUSY" || grpcerr.RetryDelay(again) != 4*time.Second || len(s.Details()) != 2 {
		t.Fatalf("reason %q delay %v details %v", grpcerr.Reason(again), grpcerr.RetryDelay(again), s.Details())
	}
	in := grpcerr.Classify(fmt.Errorf("x: %w", below))
	if in.Code != codes.Unavailable || in.Reason != "ENGINE_BUSY" || in.RetryAfter != 4*time.Second {
		t.Fatalf("Classify %+v", in)
	}
}

// The gRPC client's own statuses (a cancelled call, a refused connection) carry no ErrorInfo:
// Reason is empty, which tells them from a server's answer.
func TestReasonOfAStatusWithoutErrorInfoIsEmpty(t *testing.T) {
	if r := grpcerr.Reason(status.Error(codes.Canceled, "context canceled")); r != "" {
		t.Fatalf("reason %q", r)
	}
	if r := grpcerr.Reason(errors.New("plain")); r != "" {
		t.Fatalf("reason %q", r)
	}
	if grpcerr.CodeName(codes.Canceled) != "CANCELLED" || grpcerr.CodeName(codes.Code(99)) != "UNKNOWN" {
		t.Fatal("CodeName")
	}
}
