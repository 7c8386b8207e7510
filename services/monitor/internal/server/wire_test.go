package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/protobuf/proto"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/monitor/internal/sampler/samplertest"
)

// Uncompressed streams send one snapshot as the same encoded bytes; a
// gzip stream, which cannot share them, gets its own encoding. All three
// receive the same snapshot, tick after tick.
func TestWatchUsageStreamsShareOneEncoding(t *testing.T) {
	const interval = 100 * time.Millisecond
	clock := samplertest.NewClock()
	h := start(t, Options{NVML: busyDGX(), NewTicker: clock.NewTicker})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := &monitorv1.WatchUsageRequest{IntervalMs: interval.Milliseconds()}
	var streams []grpc.ServerStreamingClient[monitorv1.WatchUsageResponse]
	for _, opts := range [][]grpc.CallOption{nil, nil, {grpc.UseCompressor(gzip.Name)}} {
		s, err := h.client.WatchUsage(ctx, req, opts...)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	for tick := range 3 {
		if tick > 0 && !clock.Tick(interval) {
			t.Fatal("no sampler running")
		}
		var first *monitorv1.WatchUsageResponse
		for i, s := range streams {
			r, err := s.Recv()
			if err != nil {
				t.Fatalf("tick %d stream %d: %v", tick, i, err)
			}
			if len(r.GetUsage().GetGpus()) == 0 {
				t.Fatalf("tick %d stream %d: no GPUs in %v", tick, i, r)
			}
			if first == nil {
				first = r
			} else if !proto.Equal(r, first) {
				t.Fatalf("tick %d: stream %d got %v, stream 0 %v", tick, i, r, first)
			}
		}
	}
}
