// Package server is the orchestrator process: its gRPC OrchestratorService and Run, which
// wires the database, the event log, the probe, the offload cycle, the job manager and the
// recovery of an LLM left offloaded by a previous run. It talks to the host's services only
// through their gRPC addresses.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/recovery"
	"github.com/genailab/genailab/services/orchestrator/internal/relay"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Defaults.
const (
	DefaultGRPCAddr = "127.0.0.1:50054"
	DefaultDataDir  = ".data"
	DefaultHeadroom = 512 << 20
)

// Options configure the orchestrator process.
type Options struct {
	// GRPCAddr is the listen address, default 127.0.0.1:50054.
	GRPCAddr string
	// AddrFile receives the bound address once listening.
	AddrFile string
	// Token is required from callers when set; also sent to the services it calls.
	Token string
	// TLS, when set, serves gRPC over TLS (mutual TLS when it asks for client certificates).
	TLS *tls.Config
	// ClientTLS, when set, dials the services over TLS (presenting its client certificate).
	ClientTLS *tls.Config
	// DiffusionAddr, LLMAddr and MonitorAddr are the host's services.
	DiffusionAddr, LLMAddr, MonitorAddr string
	// DataDir holds <dir>/orchestrator/state.db and the image gallery.
	DataDir string
	// Host names this host in events, jobs and saved states ("" is the local host).
	Host string
	// QueueSize bounds waiting images; default 8.
	QueueSize int
	// Retain is how many finished jobs and images are kept; default 500.
	Retain int
	// MaxEvents is how many events the database keeps; default 5000.
	MaxEvents int
	// Probe tunes the decision (headroom, budget, GPU, estimate factors).
	Probe probe.Options
	// Cycle times the offload cycle.
	Cycle  cycle.Options
	Logger *slog.Logger
}

// Service implements OrchestratorService.
type Service struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	o      Options
	c      probe.Clients
	db     *state.DB
	ev     *events.Log
	prober *probe.Prober
	jobs   *jobs.Manager
	log    *slog.Logger
}

// Run serves the orchestrator until ctx is done.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.GRPCAddr == "" {
		opts.GRPCAddr = DefaultGRPCAddr
	}
	if opts.DataDir == "" {
		opts.DataDir = DefaultDataDir
	}
	dir := filepath.Join(opts.DataDir, "orchestrator")
	db, err := state.Open(filepath.Join(dir, "state.db"), state.Options{MaxEvents: opts.MaxEvents})
	if err != nil {
		return err
	}
	defer db.Close()

	dial := []grpc.DialOption{grpc.WithTransportCredentials(tlsconfig.TransportCredentials(opts.ClientTLS))}
	if opts.Token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: opts.Token, Secure: opts.ClientTLS != nil}))
	}
	conn := func(name, addr string) (*grpc.ClientConn, error) {
		cc, err := grpc.NewClient(addr, dial...)
		if err != nil {
			return nil, fmt.Errorf("dial %s service %s: %w", name, addr, err)
		}
		return cc, nil
	}
	dcc, err := conn("diffusion", opts.DiffusionAddr)
	if err != nil {
		return err
	}
	defer dcc.Close()
	lcc, err := conn("LLM", opts.LLMAddr)
	if err != nil {
		return err
	}
	defer lcc.Close()
	mcc, err := conn("monitor", opts.MonitorAddr)
	if err != nil {
		return err
	}
	defer mcc.Close()
	clients := probe.Clients{
		LLM: llmv1.NewLLMServiceClient(lcc), LLMModels: modelsv1.NewModelServiceClient(lcc),
		Diffusion: diffusionv1.NewDiffusionServiceClient(dcc), DiffusionModels: modelsv1.NewModelServiceClient(dcc),
		Monitor: monitorv1.NewMonitorServiceClient(mcc),
	}
	ev := events.New(db, log)
	prober := probe.New(clients, opts.Probe, db)
	opts.Cycle.Host = opts.Host
	cyc := cycle.New(clients, prober, db, ev, opts.Cycle, log)
	mgr := jobs.New(db, ev, cyc, jobs.Options{QueueSize: opts.QueueSize, ImageDir: filepath.Join(dir, "images"), Retain: opts.Retain, Host: opts.Host}, log)

	srv, err := grpcserver.Listen(grpcserver.Options{Addr: opts.GRPCAddr, AddrFile: opts.AddrFile, Token: opts.Token, TLS: opts.TLS, Logger: log})
	if err != nil {
		return err
	}
	s := &Service{o: opts, c: clients, db: db, ev: ev, prober: prober, jobs: mgr, log: log}
	orchestratorv1.RegisterOrchestratorServiceServer(srv.GRPC(), s)

	wctx, stopWorker := context.WithCancel(ctx)
	rel := &relay.Relay{LLM: clients.LLM, Diffusion: clients.Diffusion, Events: ev, Host: opts.Host, Log: log}
	relayDone := make(chan struct{})
	go func() { rel.Run(wctx); close(relayDone) }()
	workerDone := make(chan error, 1)
	go func() {
		// An LLM left offloaded by a previous run comes back before any new image runs.
		rctx, cancel := context.WithTimeout(wctx, reloadBound(opts.Cycle))
		if err := recovery.Recover(rctx, db, cyc, log); err != nil {
			log.Error("recovery of the LLM failed; the saved state is kept", "error", err)
		}
		cancel()
		workerDone <- mgr.Run(wctx)
	}()
	go func() {
		// On shutdown, cancel the images first so that callers get their answer before the
		// graceful stop; the running job's cycle still reloads the LLM before Run returns.
		<-ctx.Done()
		mgr.CancelAll()
		ev.Close()
	}()
	err = srv.Serve(ctx)
	stopWorker()
	mgr.CancelAll()
	if werr := <-workerDone; err == nil {
		err = werr
	}
	<-relayDone
	return err
}

func reloadBound(o cycle.Options) time.Duration {
	if o.ReloadTimeout > 0 {
		return o.ReloadTimeout
	}
	return 5 * time.Minute
}
