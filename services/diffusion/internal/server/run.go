// Package server is the diffusion service process: the gRPC DiffusionService (and the
// ModelService for type diffusion), the seed's HTTP wrapper on its own port, and Run, which
// serves them until its context ends and then stops the engine.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/modelservice"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/services/diffusion/internal/engine"
)

// ErrRemoteHTTP is returned for a non-loopback HTTP wrapper address without a token.
var ErrRemoteHTTP = errors.New("refusing to serve the HTTP wrapper on a non-loopback address without a token")

// Run serves until ctx is done, then stops the engine (cancelling a generation in progress).
func Run(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	log := opts.Logger
	if opts.HTTPAddr != HTTPOff && !grpcserver.IsLoopback(opts.HTTPAddr) && opts.Token == "" {
		return fmt.Errorf("http address %s: %w", opts.HTTPAddr, ErrRemoteHTTP)
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

	srv, err := grpcserver.Listen(grpcserver.Options{Addr: opts.GRPCAddr, AddrFile: opts.AddrFile, Token: opts.Token, TLS: opts.TLS, Logger: log})
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
		DataDir: opts.DataDir,
		Type:    modelstore.TypeDiffusion,
		Logger:  log,
		InUse: func(id string) bool {
			if eng == nil {
				return false
			}
			in := eng.Info()
			return in.ModelID == id && in.Status != engine.StatusStopped
		},
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open model store: %w", err)
	}
	eng = engine.New(engine.Options{
		Logger: log,
		Binaries: engine.Binaries{
			CLI: opts.SDCLI, Server: opts.SDServer,
			Demo: opts.DemoEngines, DemoDir: opts.DemoDir, SelfStandin: true,
		},
		TempDir:      opts.TempDir,
		StallTimeout: opts.StallTimeout,
		ReadyTimeout: opts.ReadyTimeout,
		Env:          opts.Env,
	})
	m := &models{store: store}
	if opts.DemoEngines {
		m.demoDir = filepath.Join(opts.DataDir, "demo")
	}
	return NewService(eng, m, log), eng, store, nil
}

// serveHTTP starts the seed HTTP wrapper and returns its stop function.
func serveHTTP(svc *Service, eng *engine.Engine, opts Options) (func(), error) {
	log := opts.Logger
	lis, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", opts.HTTPAddr, err)
	}
	addr := lis.Addr().String()
	if opts.HTTPAddrFile != "" {
		if err := writeAtomic(opts.HTTPAddrFile, []byte(addr)); err != nil {
			lis.Close()
			return nil, fmt.Errorf("write http address file: %w", err)
		}
	}
	w := &httpWrapper{svc: svc, eng: eng, log: log}
	hs := &http.Server{
		Handler:           auth.NewGuard(opts.Token, log).Middleware(w.handler(), "/health"),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("seed HTTP wrapper failed", "err", err)
		}
	}()
	log.Info("seed HTTP wrapper listening", "addr", addr)
	return func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(c); err != nil {
			hs.Close()
		}
		<-done
		if opts.HTTPAddrFile != "" {
			_ = os.Remove(opts.HTTPAddrFile)
		}
	}, nil
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
