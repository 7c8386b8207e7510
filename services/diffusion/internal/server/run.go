// Package server is the diffusion service process: the gRPC DiffusionService (and the
// ModelService for type diffusion), the seed's HTTP wrapper on its own port, and Run, which
// serves them until its context ends and then stops the engine.
package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/httpserver"
	"github.com/genailab/genailab/pkg/modelservice"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/engine"
)

// ErrRemoteHTTP is returned for a non-loopback HTTP wrapper address without a token.
var ErrRemoteHTTP = errors.New("refusing to serve the HTTP wrapper on a non-loopback address without a token")

// Run serves until ctx is done, then stops the engine (cancelling a generation in progress).
func Run(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return err
	}
	log := opts.Logger
	if opts.HTTPAddr != HTTPOff && !grpcserver.IsLoopback(opts.HTTPAddr) && opts.GRPC.Token == "" {
		return fmt.Errorf("http address %s: %w", opts.HTTPAddr, ErrRemoteHTTP)
	}
	listen, err := opts.GRPC.Options(DefaultGRPCAddr, log)
	if err != nil {
		return err
	}
	svc, eng, store, err := build(opts)
	if err != nil {
		return err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := eng.Close(c); err != nil {
			log.Warn("stop diffusion engine", "err", err)
		}
	}()

	srv, err := grpcserver.Listen(listen)
	if err != nil {
		return err
	}
	svc.Register(srv.GRPC())
	modelservice.New(store, log).Register(srv.GRPC())

	if opts.HTTPAddr != HTTPOff {
		stop, err := serveHTTP(svc, eng, opts)
		if err != nil {
			srv.Close()
			return err
		}
		defer stop()
	}
	stopMetrics, err := startMetrics(svc, opts)
	if err != nil {
		srv.Close()
		return err
	}
	defer stopMetrics()
	if opts.Autostart {
		svc.autostart(ctx, opts)
	}
	// A shutdown first stops the engine, so that generation streams end (Canceled) instead of
	// holding the graceful stop.
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, _ = eng.Stop(c)
		case <-stopped:
		}
	}()
	defer close(stopped)
	return srv.Serve(ctx)
}

// build wires the store, the engine and the service.
func build(opts Options) (*Service, *engine.Engine, *modelstore.Store, error) {
	log := opts.Logger
	var eng *engine.Engine
	store, err := modelstore.Open(modelstore.Options{
		DataDir:      opts.DataDir,
		Type:         modelstore.TypeDiffusion,
		MinFreeBytes: opts.MinFreeBytes,
		Logger:       log,
		InUse: func(id string) bool {
			if eng == nil {
				return false
			}
			in := eng.Info()
			return in.ModelID == id && in.Status != supervisor.StateStopped
		},
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open model store: %w", err)
	}
	eng = engine.New(engine.Options{
		Logger: log,
		Binaries: engine.Binaries{
			CLI: opts.SDCLI, Server: opts.SDServer,
			Demo: opts.DemoEngines, DemoDir: opts.DemoDir,
		},
		TempDir:      opts.TempDir,
		StallTimeout: opts.StallTimeout,
		ReadyTimeout: opts.ReadyTimeout,
		Env:          opts.Env,
		ExtraArgs:    opts.EngineArgs,
	})
	m := &models{store: store}
	if opts.DemoEngines {
		m.demoDir = filepath.Join(opts.DataDir, "demo")
		m.demoCLI = eng.DemoCLI
	}
	svc := NewService(eng, m, log)
	svc.defaultModel = opts.DefaultModel
	return svc, eng, store, nil
}

// serveHTTP starts the seed HTTP wrapper and returns its stop function.
func serveHTTP(svc *Service, eng *engine.Engine, opts Options) (func(), error) {
	log := opts.Logger
	w := &httpWrapper{svc: svc, eng: eng, log: log}
	hs, err := httpserver.Start(httpserver.Options{
		Name: "seed HTTP wrapper", Addr: opts.HTTPAddr, AddrFile: opts.HTTPAddrFile, Logger: log,
		Handler: auth.NewGuard(opts.GRPC.Token, log).Middleware(w.handler(), "/health"),
	})
	if err != nil {
		return nil, err
	}
	return hs.Stop, nil
}
