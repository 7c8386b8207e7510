// Package server is the monitor process: the gRPC MonitorService (system
// info, usage, streamed usage, history), the Prometheus /metrics endpoint,
// and Run, which serves both until its context ends.
package server

import (
	"context"
	"errors"
	"net/http"
	"runtime"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/httpserver"
	"github.com/genailab/genailab/services/monitor/internal/metrics"
)

// MetricsOff as Options.MetricsAddr disables /metrics.
const MetricsOff = "off"

// ErrRemoteMetrics is returned for a non-loopback metrics address without
// AllowRemoteMetrics.
var ErrRemoteMetrics = errors.New("refusing to serve unauthenticated /metrics on a non-loopback address (allow it explicitly)")

// Run serves the monitor until ctx is done, then shuts down: streams end,
// samplers stop, NVML is shut down.
func Run(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	log := opts.Logger
	if err := opts.Validate(); err != nil {
		return err
	}
	if n := opts.GoMaxProcs; n > 0 {
		prev := runtime.GOMAXPROCS(n)
		defer runtime.GOMAXPROCS(prev)
		log.Info("Go runtime limited", "gomaxprocs", n, "runtime_default", prev)
	}
	listen, err := opts.GRPC.Options(DefaultGRPCAddr, log)
	if err != nil {
		return err
	}
	m, err := NewMonitor(opts)
	if err != nil {
		return err
	}
	defer func() {
		if err := m.Close(); err != nil {
			log.Warn("closing monitor", "error", err)
		}
	}()

	srv, err := grpcserver.Listen(listen)
	if err != nil {
		return err
	}
	monitorv1.RegisterMonitorServiceServer(srv.GRPC(), NewService(m))

	if opts.MetricsAddr != MetricsOff {
		stopMetrics, err := serveMetrics(m, opts)
		if err != nil {
			srv.Close()
			return err
		}
		defer stopMetrics()
	}
	// WatchUsage streams never end by themselves: end them as shutdown
	// begins, so that the graceful stop does not wait out its grace period.
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			m.EndStreams()
		case <-stopped:
		}
	}()
	return srv.Serve(ctx)
}

// serveMetrics starts the /metrics HTTP server and returns its stop function.
func serveMetrics(m *Monitor, opts Options) (func(), error) {
	log := opts.Logger
	reg, err := metrics.NewRegistry(m.MetricsSource())
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	hs, err := httpserver.Start(httpserver.Options{
		Name: "metrics", Addr: opts.MetricsAddr, AddrFile: opts.MetricsAddrFile, Handler: mux, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return hs.Stop, nil
}
