// Package server is the orchestrator process: its gRPC OrchestratorService and Run, which
// composes the database, the event log, the host registry (and, for each host, its probe,
// offload cycle and event relay: composeHost), the dispatcher and the job manager. It talks to the
// hosts' services only through their gRPC addresses.
package server

import (
	"cmp"
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/keepalive"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/dispatch"
	"github.com/genailab/genailab/services/orchestrator/internal/etcdconn"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/hosts"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/relay"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Defaults.
const (
	DefaultGRPCAddr = "127.0.0.1:50054"
	DefaultDataDir  = ".data"
	DefaultHeadroom = 512 << 20
	// LocalHost names the one host of LLMAddr, DiffusionAddr and MonitorAddr when Host is
	// empty: in events, jobs, placement messages, saved states and ListHosts alike.
	LocalHost = "local"
	// DefaultKeepaliveTime and DefaultKeepaliveTimeout are the keepalive of the connections
	// to the hosts (the services accept pings every 5 s: pkg/grpcserver).
	DefaultKeepaliveTime    = 10 * time.Second
	DefaultKeepaliveTimeout = 5 * time.Second
)

// Options configure the orchestrator process.
type Options struct {
	// GRPC is the gRPC listener (address, default 127.0.0.1:50054; health-only address;
	// address file; TLS; the token required from callers, also sent to the services it calls).
	GRPC grpcserver.Flags
	// ClientTLS, when set, dials the services over TLS (presenting its client certificate).
	ClientTLS tlsconfig.ClientFlags
	// DiffusionAddr, LLMAddr and MonitorAddr are the host's services when the
	// orchestrator drives one host (no Hosts, no DNS): that host is named Host.
	DiffusionAddr, LLMAddr, MonitorAddr string
	// Hosts are the lab's hosts (-hosts).
	Hosts []agent.Spec
	// DNSName, when set, finds hosts by DNS (every address is a host with its services on
	// DNSPorts), e.g. a Kubernetes headless service.
	DNSName  string
	DNSPorts agent.Ports
	// HostCheckInterval is the time between health checks of each host (0: 2 s).
	HostCheckInterval time.Duration
	// KeepaliveTime and KeepaliveTimeout are the keepalive of the connections to the
	// hosts: a ping after KeepaliveTime without traffic (grpc-go raises less than 10 s to
	// 10 s), and a connection whose ping or data stays unacknowledged for KeepaliveTimeout
	// is closed, so that a stream to a host whose link went down fails (Unavailable)
	// instead of hanging until TCP gives up. Defaults 10 s and 5 s.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Placement configures placement and failover.
	Placement dispatch.Options
	// Workers is how many images run at once (0: one per configured host, 64 with DNS).
	Workers int
	// DataDir holds <dir>/orchestrator/state.db and the image gallery.
	DataDir string
	// Host names the one host of LLMAddr, DiffusionAddr and MonitorAddr (no Hosts, no DNS)
	// in events, jobs and saved states (default LocalHost), and names jobs not placed yet.
	Host string
	// QueueSize bounds waiting images; default 8.
	QueueSize int
	// Retain is how many finished jobs and images are kept; default 500.
	Retain int
	// MaxEvents is how many events the database keeps; default 5000.
	MaxEvents int
	// State is the store: StateBolt (default: <DataDir>/orchestrator/state.db, one
	// orchestrator) or StateEtcd (etcd at Etcd, several replicas, one leader elected).
	State string
	// Etcd is the connection to etcd with StateEtcd.
	Etcd etcdconn.Flags
	// EtcdPrefix is the key prefix of the store in etcd (default state.DefaultEtcdPrefix).
	EtcdPrefix string
	// LeaderTTL is the lease of the leadership with StateEtcd (default 2 s).
	LeaderTTL time.Duration
	// AdvertiseAddr is how the other replicas reach this one: the followers forward the
	// calls they do not answer to the leader's (default: the bound gRPC address).
	AdvertiseAddr string
	// PeerServerName is the name expected in the other replicas' certificates when the
	// followers dial the leader over TLS (default: the host of its AdvertiseAddr).
	PeerServerName string
	// Probe tunes the decision (headroom, budget, GPU, estimate factors).
	Probe probe.Options
	// Cycle times the offload cycle.
	Cycle cycle.Options
	// Metrics serves Prometheus /metrics (metrics.go); zero: none.
	Metrics metricsserver.Options
	Logger  *slog.Logger
}

// Service implements OrchestratorService.
type Service struct {
	orchestratorv1.UnimplementedOrchestratorServiceServer
	o    Options
	db   *state.DB
	ev   *events.Log
	reg  *hosts.Registry
	jobs *jobs.Manager
	log  *slog.Logger
	// single is set when the orchestrator drives one host given by its addresses.
	single bool
	// replica is the election with StateEtcd (nil with bbolt).
	replica *replica
	// live is the single host's engine state, kept by its relay's streams (GetHealth).
	live *relay.Live
}

// Run serves the orchestrator until ctx is done.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	listen, err := opts.GRPC.Options(DefaultGRPCAddr, log)
	if err != nil {
		return err
	}
	clientTLS, err := opts.ClientTLS.Config()
	if err != nil {
		return err
	}
	if opts.DataDir == "" {
		opts.DataDir = DefaultDataDir
	}
	dir := filepath.Join(opts.DataDir, "orchestrator")
	var db *state.DB
	var rep *replica
	switch opts.State {
	case "", StateBolt:
		db, err = state.Open(filepath.Join(dir, "state.db"), state.Options{MaxEvents: opts.MaxEvents, Logger: log})
		if err != nil {
			return err
		}
	case StateEtcd:
		if rep, err = openReplica(opts, opts.AdvertiseAddr, clientTLS, log); err != nil {
			return err
		}
		defer rep.close()
		db = rep.db()
		listen.ServerOptions = append(listen.ServerOptions, rep.interceptors()...)
	}
	defer db.Close()

	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(tlsconfig.TransportCredentials(clientTLS)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cmp.Or(opts.KeepaliveTime, DefaultKeepaliveTime), Timeout: cmp.Or(opts.KeepaliveTimeout, DefaultKeepaliveTimeout), PermitWithoutStream: true}),
		// A host that comes back is reconnected within seconds (grpc's default backoff
		// reaches 2 min); a few connection attempts a second to a lab's dead hosts cost nothing.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second}, MinConnectTimeout: 5 * time.Second}),
	}
	if opts.GRPC.Token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: opts.GRPC.Token, Secure: clientTLS != nil}))
	}
	specs := opts.Hosts
	single := len(specs) == 0 && opts.DNSName == ""
	if single {
		if opts.Host == "" {
			opts.Host = LocalHost
			// Before the local host had a name, its saved LLM state was kept under "".
			if moved, err := db.MoveSavedState("", LocalHost); err != nil {
				log.Warn("saved LLM state of the unnamed local host not moved to "+LocalHost, "error", err)
			} else if moved {
				log.Info("saved LLM state of the unnamed local host moved to " + LocalHost)
			}
		}
		specs = []agent.Spec{{Name: opts.Host, LLMAddr: opts.LLMAddr, DiffusionAddr: opts.DiffusionAddr, MonitorAddr: opts.MonitorAddr}}
	}
	ev := events.New(db, log)
	// The events still being written are stored before the database closes.
	defer ev.Flush()
	announceRecovery(db, ev, opts.Host)
	var live *relay.Live
	if single {
		live = &relay.Live{}
	}
	reg, err := hosts.New(specs, hosts.Options{
		Dial: dial, Compose: composeHost(opts, db, ev, live, log), CheckInterval: opts.HostCheckInterval,
		Place:   agent.PlaceOptions{DiffusionModel: opts.Placement.DiffusionModel, Probe: opts.Probe},
		DNSName: opts.DNSName, DNSPorts: opts.DNSPorts,
		DB: db, ReloadTimeout: opts.Cycle.ReloadTimeout, Log: log,
	})
	if err != nil {
		return err
	}
	// The dispatcher weighs the images waiting for each pinned host, which the job manager
	// (built on the dispatcher) counts.
	var mgr *jobs.Manager
	placement := opts.Placement
	placement.Queued = func() map[string]int { return mgr.QueuedPins() }
	disp := dispatch.New(reg, db, ev, placement, log)
	workers := opts.Workers
	if workers <= 0 {
		workers = max(len(specs), 1)
		if opts.DNSName != "" {
			workers = 64
		}
	}
	mgr = jobs.New(db, ev, disp, jobs.Options{QueueSize: opts.QueueSize, ImageDir: filepath.Join(dir, "images"), Retain: opts.Retain, Host: opts.Host, Workers: workers}, log)
	if opts.DNSName == "" {
		warnOrphans(db, reg, log)
	}

	srv, err := grpcserver.Listen(listen)
	if err != nil {
		return err
	}
	if rep != nil {
		if opts.AdvertiseAddr == "" {
			rep.setID(srv.Addr())
		}
		rep.serving = srv.SetServing
	}
	ms, err := startMetrics(opts, ev, mgr, reg)
	if err != nil {
		srv.Close()
		return err
	}
	if ms != nil {
		defer ms.Stop()
	}
	s := &Service{o: opts, db: db, ev: ev, reg: reg, jobs: mgr, log: log, single: single, replica: rep, live: live}
	orchestratorv1.RegisterOrchestratorServiceServer(srv.GRPC(), s)

	// The hosts are followed until the last LLM reload has ended, after the workers.
	hctx, stopHosts := context.WithCancel(context.WithoutCancel(ctx))
	hostsDone := make(chan struct{})
	wctx, stopWorker := context.WithCancel(ctx)
	sctx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	workerDone := make(chan error, 1)
	ready := func(leading bool) { srv.SetServing(LeaderHealthService, leading) }
	if rep == nil {
		ready(true)
		srv.SetServing(ReadyHealthService, true)
		go func() { reg.Run(hctx); close(hostsDone) }()
		// An LLM left offloaded by a previous run comes back (per host, as soon as the host is
		// reachable) before that host takes a new image.
		go func() { workerDone <- mgr.Run(wctx) }()
	} else {
		// A follower answers reads and forwards the rest to the leader (forward.go); the
		// leader follows the hosts (reloading the LLMs the dead leader left offloaded:
		// their saved states are in etcd) and dispatches.
		go func() {
			err := rep.run(wctx, ready, func(lctx context.Context) error {
				lhctx, stopLed := context.WithCancel(context.WithoutCancel(lctx))
				led := make(chan struct{})
				go func() { reg.Run(lhctx); close(led) }()
				err := mgr.Run(lctx)
				disp.Wait()
				stopLed()
				<-led
				return err
			})
			close(hostsDone)
			workerDone <- err
			if err != nil {
				log.Error("orchestrator replica stops", "error", err)
				stopServe()
			}
		}()
	}
	go func() {
		// On shutdown, cancel the images first so that callers get their answer before the
		// graceful stop; the running jobs' cycles still reload the LLMs before Run returns.
		<-sctx.Done()
		mgr.CancelAll()
		ev.Close()
	}()
	err = srv.Serve(sctx)
	stopWorker()
	mgr.CancelAll()
	if werr := <-workerDone; err == nil {
		err = werr
	}
	disp.Wait()
	stopHosts()
	<-hostsDone
	return err
}

// composeHost builds what runs on each host: its prober (the decision, with the host's
// own budget when it has one), its offload cycle, and the relay that turns its engines'
// lifecycle into events (and, with one host, keeps live: its engines' state).
func composeHost(opts Options, db *state.DB, ev *events.Log, live *relay.Live, log *slog.Logger) func(*agent.Agent) (hosts.Parts, error) {
	return func(a *agent.Agent) (hosts.Parts, error) {
		po := opts.Probe
		if a.Spec.BudgetBytes > 0 {
			po.BudgetBytes = a.Spec.BudgetBytes
		}
		pr := probe.New(a.Clients, po, db)
		co := opts.Cycle
		co.Host = a.Name()
		cy := cycle.New(a.Clients, pr, db, ev, co, log.With("host", a.Name()))
		rel := &relay.Relay{LLM: a.Clients.LLM, Diffusion: a.Clients.Diffusion, Events: ev, Host: a.Name(), Log: log, Live: live}
		return hosts.Parts{Prober: pr, Cycle: cy, Run: rel.Run}, nil
	}
}

// announceRecovery tells, as an event (the log line comes from state.Open; GetHealth
// carries the detail), that the database was found damaged and replaced.
func announceRecovery(db *state.DB, ev *events.Log, host string) {
	rec := db.Recovered()
	if rec == nil {
		return
	}
	ev.Emit(orchestratorv1.EventType_EVENT_TYPE_UNSPECIFIED, host, "", "STATE DATABASE DAMAGED: "+rec.String()+".",
		map[string]float64{
			"state_recovered": 1, "saved_states_restored": float64(rec.SavedStates), "jobs_restored": float64(rec.Jobs),
			"events_restored": float64(rec.Events), "corrections_restored": float64(rec.Corrections),
		})
	ev.Flush()
}

// warnOrphans logs saved LLM states of hosts the orchestrator no longer knows.
func warnOrphans(db *state.DB, reg *hosts.Registry, log *slog.Logger) {
	states, err := db.SavedStates("")
	if err != nil {
		log.Warn("read saved states", "error", err)
		return
	}
	for _, st := range states {
		if _, err := reg.Get(st.GetHost()); err != nil {
			log.Warn("a saved LLM state belongs to a host that is not configured; it is kept (see GetSavedState)", "host", st.GetHost())
		}
	}
}
