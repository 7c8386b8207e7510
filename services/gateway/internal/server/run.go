// Package server runs the REST gateway as an HTTP server bound to a context.
package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/httpserver"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/sdnotify"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// Options configure the gateway process.
type Options struct {
	// HTTPAddr is the listen address, default 127.0.0.1:8080.
	HTTPAddr string
	// AddrFile receives the bound address once listening.
	AddrFile string
	Backends gateway.Backends
	// Token is required from HTTP clients when set.
	Token string
	// BackendToken is sent to the gRPC services.
	BackendToken string
	// TLS are the certificate files of HTTPS (asking for client certificates with a client
	// CA); none: plain HTTP.
	TLS tlsconfig.ServerFlags
	// BackendTLS, when set, dials the gRPC services over TLS (with its client certificate).
	BackendTLS tlsconfig.ClientFlags
	// AllowInsecureRemote allows a non-loopback address without a token.
	AllowInsecureRemote bool
	MaxBodyBytes        int64
	// Metrics serves Prometheus /metrics (metrics.go); zero: none.
	Metrics metricsserver.Options
	Logger  *slog.Logger
}

// Run serves until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = DefaultHTTPAddr
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	serverTLS, err := opts.TLS.Config(log)
	if err != nil {
		return err
	}
	backendTLS, err := opts.BackendTLS.Config()
	if err != nil {
		return err
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(tlsconfig.TransportCredentials(backendTLS))}
	if opts.BackendToken != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: opts.BackendToken, Secure: backendTLS != nil}))
	}
	g, err := gateway.New(ctx, gateway.Options{
		Backends: opts.Backends, DialOptions: dial, Token: opts.Token,
		MaxBodyBytes: opts.MaxBodyBytes, Logger: log,
	})
	if err != nil {
		return err
	}
	defer g.Close()
	h, stopMetrics, err := instrument(g, opts.Metrics, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	hs, err := httpserver.Start(httpserver.Options{
		Name: "REST gateway", Addr: opts.HTTPAddr, AddrFile: opts.AddrFile, Handler: h, TLS: serverTLS, Logger: log,
	})
	if err != nil {
		return err
	}
	defer hs.Stop()
	if err := sdnotify.Ready(); err != nil { // a Type=notify unit is started from here on
		log.Warn("tell systemd the gateway is ready", "error", err)
	}
	select {
	case <-hs.Done():
		return errors.New("REST gateway stopped serving")
	case <-ctx.Done():
		_ = sdnotify.Stopping()
		return nil
	}
}
