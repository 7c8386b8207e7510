package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/monitor/internal/sampler"
)

// Service implements MonitorService over a Monitor.
type Service struct {
	monitorv1.UnimplementedMonitorServiceServer
	m *Monitor
}

// NewService returns the gRPC service of m.
func NewService(m *Monitor) *Service { return &Service{m: m} }

var errorRules = []grpcerr.Rule{
	{Target: sampler.ErrInterval, Code: codes.InvalidArgument, Reason: "INVALID_INTERVAL"},
	{Target: sampler.ErrClosed, Code: codes.Unavailable, Reason: grpcerr.ReasonShuttingDown},
}

// GetSystemInfo reads the machine now.
func (s *Service) GetSystemInfo(ctx context.Context, _ *monitorv1.GetSystemInfoRequest) (*monitorv1.GetSystemInfoResponse, error) {
	return systemInfoProto(s.m.collector.SystemInfo(ctx)), nil
}

// GetUsage returns the newest snapshot (at most one history step old).
func (s *Service) GetUsage(ctx context.Context, _ *monitorv1.GetUsageRequest) (*monitorv1.GetUsageResponse, error) {
	return &monitorv1.GetUsageResponse{Usage: s.m.current(ctx).usage}, nil
}

// WatchUsage streams snapshots from the sampler shared by every subscriber
// of the requested interval until the client goes away.
func (s *Service) WatchUsage(req *monitorv1.WatchUsageRequest, stream grpc.ServerStreamingServer[monitorv1.WatchUsageResponse]) error {
	interval := DefaultWatchInterval
	if ms := req.GetIntervalMs(); ms != 0 {
		if ms < sampler.MinInterval.Milliseconds() || ms > sampler.MaxInterval.Milliseconds() {
			return grpcerr.Status(grpcerr.Invalidf("interval_ms %d: must be 0 (meaning %d) or between %d and %d",
				ms, DefaultWatchInterval.Milliseconds(), sampler.MinInterval.Milliseconds(), sampler.MaxInterval.Milliseconds()))
		}
		interval = time.Duration(ms) * time.Millisecond
	}
	ctx := stream.Context()
	shared := sharedEncoding(ctx)
	// The sampler sends to every stream of its interval from one goroutine,
	// so that gRPC writes many streams' messages at once (sampler.SubscribeSend).
	sub, err := s.m.hub.SubscribeSend(interval, func(u sampler.Update[*sample]) error {
		if !shared || u.Missed != 0 {
			return stream.SendMsg(&monitorv1.WatchUsageResponse{Usage: u.Value.usage, Missed: u.Missed})
		}
		// The common response, encoded once for every stream.
		pm, err := u.Value.wire.prepared(stream, u.Value.usage)
		if err != nil {
			return fmt.Errorf("encode usage: %w", err)
		}
		return stream.SendMsg(pm)
	})
	if err != nil {
		return grpcerr.Status(err, errorRules...)
	}
	defer sub.Cancel()
	err = sub.Serve(ctx)
	switch {
	case errors.Is(err, sampler.ErrClosed):
		return status.Error(codes.Unavailable, "monitor shutting down")
	case ctx.Err() != nil:
		return grpcerr.Status(ctx.Err(), errorRules...)
	default:
		return err // the stream's send failed
	}
}

// GetHistory returns the recorded snapshots taken after req.Since.
func (s *Service) GetHistory(_ context.Context, req *monitorv1.GetHistoryRequest) (*monitorv1.GetHistoryResponse, error) {
	var since time.Time
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, grpcerr.Status(grpcerr.Invalidf("since: %v", err))
		}
		since = req.GetSince().AsTime()
	}
	entries := s.m.ring.Since(since)
	resp := &monitorv1.GetHistoryResponse{Samples: make([]*monitorv1.Usage, len(entries))}
	for i, e := range entries {
		resp.Samples[i] = e.Value.usage
	}
	return resp, nil
}
