package grpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
