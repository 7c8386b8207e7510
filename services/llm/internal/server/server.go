// Package server is the LLM service process: one gRPC server carrying
// LLMService (llama-server supervision and chat) and ModelService for the
// llm model store, and Run, which owns their lifetime.
//
// Data layout under Options.DataDir:
//
//	models/llm/<id>/...      the model store (pkg/modelstore)
//	llm/llama-server.log     llama-server's output, rotated
//	llm/llama-server.pid     the running engine (reaped at the next start
//	                         if this process dies without stopping it)
//	llm/slots/               conversations' KV caches saved across an
//	                         offload, with their manifest (service/slots.go)
package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/logstream"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/modelservice"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/llm/internal/service"
)

// Defaults of Options.
const (
	DefaultGRPCAddr = "127.0.0.1:50051"
	DefaultDataDir  = ".data"
	// closeTimeout bounds stopping llama-server at shutdown; the stop
	// sequence itself ends in SIGKILL well before.
	closeTimeout = 30 * time.Second
)

// Options configure the LLM service process.
type Options struct {
	// GRPC is the gRPC listener (address, default 127.0.0.1:50051; health-only
	// address; address file; the token required from callers; TLS).
	GRPC grpcserver.Flags
	// DataDir holds models, logs and the pid file (default .data).
	DataDir string
	// MinFreeBytes is the free disk space a model download must leave (0: 5 % of the volume,
	// at most 1 GiB).
	MinFreeBytes uint64
	// SlotBudgetBytes bounds the conversations' KV caches saved across an
	// offload (0: service.DefaultSlotBudget).
	SlotBudgetBytes int64
	// LlamaServer is the llama-server executable; "" resolves it through
	// GENAILAB_LLAMA_SERVER, PATH and <repo>/.engines.
	LlamaServer string
	// DefaultModel is started when a Start names no model; with Autostart
	// it is started at boot (with automatic restarts).
	DefaultModel string
	Autostart    bool
	// ReadyTimeout and ChatWaitTimeout are the service defaults (see
	// service.Options); zero takes the service's.
	ReadyTimeout    time.Duration
	ChatWaitTimeout time.Duration
	// TermGrace is the wait after each SIGTERM and HealthInterval the
	// period of health checks while running (zero: service defaults).
	TermGrace      time.Duration
	HealthInterval time.Duration
	// Restart tunes the automatic restarts of llama-server (see
	// service.Options.Restart); zero values take the defaults.
	Restart supervisor.RestartPolicy
	// AllowEngineRemoteBind lets Start ask llama-server for a non-loopback
	// host; llama-server then requires an API key only the service holds
	// (see service.Options.AllowRemoteBind).
	AllowEngineRemoteBind bool
	// Metrics serves Prometheus /metrics (metrics.go); zero: none.
	Metrics metricsserver.Options
	Logger  *slog.Logger
}

// Run serves until ctx is done, then stops llama-server and returns.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if err := o.Validate(); err != nil {
		return err
	}
	listen, err := o.GRPC.Options(DefaultGRPCAddr, log)
	if err != nil {
		return err
	}
	// Absolute: llama-server runs in runDir and gets model paths from the
	// store.
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	o.DataDir = dataDir
	runDir := filepath.Join(o.DataDir, "llm")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", runDir, err)
	}
	// A previous instance that died without stopping its llama-server
	// left it running: end it before anything binds ports or loads models.
	if _, err := supervisor.ReapStale(runDir, log); err != nil {
		log.Warn("reaping engines left by a previous instance", "err", err)
	}

	var svc atomic.Pointer[service.Service]
	var grpcSrv atomic.Pointer[grpcserver.Server]
	var notServing atomic.Bool
	store, err := modelstore.Open(modelstore.Options{
		DataDir: o.DataDir, Type: modelstore.TypeLLM, Logger: log, MinFreeBytes: o.MinFreeBytes,
		InUse: func(id string) bool {
			s := svc.Load()
			return s != nil && s.ModelInUse(id)
		},
	})
	if err != nil {
		return fmt.Errorf("open llm model store: %w", err)
	}
	// The supervisor outlives ctx: llama-server is stopped after the gRPC
	// server has drained, by Close below.
	s, err := service.New(context.WithoutCancel(ctx), service.Options{
		Store: store, LlamaServer: o.LlamaServer, DefaultModel: o.DefaultModel,
		LogDir: runDir, PidDir: runDir, SlotDir: filepath.Join(runDir, "slots"), SlotBudget: o.SlotBudgetBytes,
		ReadyTimeout: o.ReadyTimeout, ChatWaitTimeout: o.ChatWaitTimeout, TermGrace: o.TermGrace,
		HealthInterval: o.HealthInterval, Restart: o.Restart, AllowRemoteBind: o.AllowEngineRemoteBind,
		// A crash-looping llama-server makes LLMService NOT_SERVING in the
		// grpc health service (the server as a whole, "", stays SERVING:
		// the service is up and says what is wrong in GetInfo). Applied
		// after every engine event, so the SERVING that Serve sets at its
		// start cannot hide a crash loop for more than one attempt.
		OnServing: func(serving bool, reason string) {
			if was := notServing.Swap(!serving); was != !serving {
				if serving {
					log.Info("LLM serving again")
				} else {
					log.Warn("LLM not serving", "reason", reason)
				}
			}
			if srv := grpcSrv.Load(); srv != nil {
				srv.SetServing(llmv1.LLMService_ServiceDesc.ServiceName, serving)
			}
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	if o.AllowEngineRemoteBind {
		log.Warn("llama-server may be started on non-loopback addresses (-allow-engine-remote-bind); it then requires an API key that only this service holds")
	}
	svc.Store(s)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			log.Error("stopping llama-server at shutdown", "err", err)
		}
	}()

	srv, err := grpcserver.Listen(listen)
	if err != nil {
		return err
	}
	llmv1.RegisterLLMServiceServer(srv.GRPC(), s)
	commonv1.RegisterLogServiceServer(srv.GRPC(), logstream.NewServer(s.Logs()))
	grpcSrv.Store(srv)
	ms, err := startMetrics(s, o.Metrics, log)
	if err != nil {
		srv.Close()
		return err
	}
	if ms != nil {
		defer ms.Stop()
	}
	modelservice.New(store, log).Register(srv.GRPC())

	if o.Autostart {
		go autostart(ctx, s, o.DefaultModel, log)
	}
	stopWatch := context.AfterFunc(ctx, s.BeginShutdown)
	defer stopWatch()
	return srv.Serve(ctx)
}

// autostart starts the default model with automatic restarts; a failure is
// logged (and visible in GetInfo), not fatal: the service stays up to be
// configured.
func autostart(ctx context.Context, s *service.Service, model string, log *slog.Logger) {
	res, err := s.Start(ctx, &llmv1.StartRequest{Config: &llmv1.LLMConfig{ModelId: model, AutoRestart: true}})
	if err != nil {
		if ctx.Err() == nil {
			log.Error("autostart of the default model failed", "model", model, "err", err)
		}
		return
	}
	log.Info("default model started", "model", model, "base_url", res.GetInfo().GetBaseUrl(), "startup_ms", res.GetStartupMs())
}
