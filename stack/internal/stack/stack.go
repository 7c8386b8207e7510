// Package stack starts genailab's whole single-host stack — LLM, diffusion and monitor
// services, the orchestrator and the REST gateway — each as its own supervised process,
// with safe defaults: loopback addresses, one data directory, the gateway on :8080.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/genailab/genailab/pkg/addrfile"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Options configure the stack.
type Options struct {
	// DataDir holds models, logs and state of every service.
	DataDir string
	// BinDir holds the service binaries; empty looks next to the running executable, then PATH.
	BinDir string
	// Ephemeral starts every service on a free port (tests); otherwise the default ports are used:
	// LLM 50051, diffusion 50052 (its seed HTTP wrapper 8081), monitor 50053, orchestrator 50054,
	// gateway 8080; their Prometheus /metrics on 9401, 9402, 9403, 9404 and 9405.
	Ephemeral bool
	// GatewayAddr overrides the gateway's HTTP address.
	GatewayAddr string
	// LlamaServer is the llama-server executable; empty lets the LLM service resolve it.
	LlamaServer string
	// LLMModel is a model id the LLM service starts at boot ("" starts none).
	LLMModel string
	// DemoEngines runs the stable-diffusion.cpp stand-in (marked as demo everywhere) when
	// Diffusion chooses nothing.
	DemoEngines bool
	// Diffusion is the image engine to start at boot (ChooseDiffusion): the real
	// stable-diffusion.cpp with a model, or the demo stand-in. Zero starts none (unless
	// DemoEngines).
	Diffusion DiffusionChoice
	// DiffusionMode is the engine mode started at boot: "cli" (default) or "server".
	DiffusionMode string
	// Token protects every service and the gateway when set. The services get it
	// through a file (run/token in DataDir, mode 0600, removed by Stop), never on
	// their command lines, which every local user can read.
	Token string
	// Logger receives the launcher's logs; LogOutput every service's log lines.
	Logger    *slog.Logger
	LogOutput io.Writer
}

// Stack is a running stack.
type Stack struct {
	opts  Options
	log   *slog.Logger
	svcs  []*service
	sups  []*supervisor.Supervisor
	addrs map[string]string
	// tokenFile holds Options.Token for the services ("" without a token).
	tokenFile string
}

// TokenFileName is the file in DataDir/run that holds the token for the services.
const TokenFileName = "token"

// Addr returns the bound address of a service: "llm", "diffusion", "monitor",
// "orchestrator" (gRPC), "gateway" (HTTP), "diffusion-http" (the seed wrapper), or a
// service's Prometheus /metrics: "llm-metrics", ..., "gateway-metrics" (MetricsName).
func (s *Stack) Addr(name string) string { return s.addrs[name] }

func (o Options) port(def int) string {
	if o.Ephemeral {
		return "127.0.0.1:0"
	}
	return "127.0.0.1:" + strconv.Itoa(def)
}

// Start launches the services in dependency order and returns once all are ready.
// On failure everything already started is stopped.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.DataDir == "" {
		return nil, errors.New("stack: a data directory is required")
	}
	runDir := filepath.Join(opts.DataDir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	// Engines left by a launcher that died without cleaning up.
	if reaped, err := supervisor.ReapStale(runDir, log); err != nil {
		log.Warn("reap stale services", "err", err)
	} else if len(reaped) > 0 {
		log.Info("reaped services left by a previous run", "count", len(reaped))
	}
	s := &Stack{opts: opts, log: log, addrs: map[string]string{}}
	common := []string{"-data-dir", opts.DataDir}
	if opts.Token != "" {
		s.tokenFile = filepath.Join(runDir, TokenFileName)
		if err := auth.WriteTokenFile(s.tokenFile, opts.Token); err != nil {
			return nil, err
		}
		common = append(common, "-token-file", s.tokenFile)
	}
	// Every service serves /metrics and writes its address to run/<name>-metrics.addr.
	metrics := func(name string, def int) []string {
		return []string{"-metrics-addr", opts.port(def), "-metrics-addr-file", filepath.Join(runDir, MetricsName(name)+".addr")}
	}
	llmArgs := append(append([]string{"-grpc-addr", opts.port(50051)}, metrics("llm", 9401)...), common...)
	if opts.LlamaServer != "" {
		llmArgs = append(llmArgs, "-llama-server", opts.LlamaServer)
	}
	if opts.LLMModel != "" {
		llmArgs = append(llmArgs, "-default-model", opts.LLMModel, "-autostart")
	}
	diffArgs := append(append([]string{"-grpc-addr", opts.port(50052), "-http-addr", opts.port(8081),
		"-http-addr-file", filepath.Join(runDir, "diffusion-http.addr")}, metrics("diffusion", 9402)...), common...)
	switch d := opts.Diffusion; {
	case d.Demo || d == (DiffusionChoice{}) && opts.DemoEngines:
		diffArgs = append(diffArgs, "-demo-engines")
		if d.Demo {
			diffArgs = append(diffArgs, "-autostart")
		}
	case d.SDCLI != "":
		diffArgs = append(diffArgs, "-sd-cli", d.SDCLI, "-default-model", d.Model, "-autostart")
		if d.SDServer != "" {
			diffArgs = append(diffArgs, "-sd-server", d.SDServer)
		}
	}
	if opts.DiffusionMode != "" {
		diffArgs = append(diffArgs, "-mode", opts.DiffusionMode)
	}
	first := []*service{
		{name: "llm", binary: "genailab-llm", args: llmArgs, grpc: true},
		{name: "diffusion", binary: "genailab-diffusion", args: diffArgs, grpc: true},
		// The monitor counts an engine as the stack's only if it descends
		// from a service (pid files in runDir), not another user's sd-cli.
		{name: "monitor", binary: "genailab-monitor", args: append(append([]string{"-grpc-addr", opts.port(50053),
			"-managed-pid-dir", runDir}, metrics("monitor", 9403)...), common...), grpc: true},
	}
	if err := s.launch(ctx, runDir, first); err != nil {
		s.Stop(context.Background())
		return nil, err
	}
	s.addrs["diffusion-http"] = addrfile.Read(filepath.Join(runDir, "diffusion-http.addr"))
	orchArgs := append(append([]string{"-grpc-addr", opts.port(50054),
		"-llm-addr", s.addrs["llm"], "-diffusion-addr", s.addrs["diffusion"], "-monitor-addr", s.addrs["monitor"]}, metrics("orchestrator", 9404)...), common...)
	if err := s.launch(ctx, runDir, []*service{{name: "orchestrator", binary: "genailab-orchestrator", args: orchArgs, grpc: true}}); err != nil {
		s.Stop(context.Background())
		return nil, err
	}
	gwAddr := opts.GatewayAddr
	if gwAddr == "" {
		gwAddr = opts.port(8080)
	}
	gwArgs := []string{"-http-addr", gwAddr, "-llm-addr", s.addrs["llm"], "-diffusion-addr", s.addrs["diffusion"],
		"-monitor-addr", s.addrs["monitor"], "-orchestrator-addr", s.addrs["orchestrator"]}
	gwArgs = append(gwArgs, metrics("gateway", 9405)...)
	if opts.Token != "" {
		gwArgs = append(gwArgs, "-token-file", s.tokenFile, "-backend-token-file", s.tokenFile)
	}
	if err := s.launch(ctx, runDir, []*service{{name: "gateway", binary: "genailab-gateway", args: gwArgs}}); err != nil {
		s.Stop(context.Background())
		return nil, err
	}
	return s, nil
}

// launch starts services concurrently and waits until all are ready.
func (s *Stack) launch(ctx context.Context, runDir string, svcs []*service) error {
	errc := make(chan error, len(svcs))
	for _, svc := range svcs {
		path, err := findBinary(s.opts.BinDir, svc.binary)
		if err != nil {
			return err
		}
		svc.addrFile = filepath.Join(runDir, svc.name+".addr")
		_ = os.Remove(svc.addrFile)
		sup, err := supervisor.New(context.WithoutCancel(ctx), supervisor.Config{Name: svc.name, Logger: s.log, PidDir: runDir})
		if err != nil {
			return err
		}
		s.svcs = append(s.svcs, svc)
		s.sups = append(s.sups, sup)
		spec := supervisor.Spec{
			Path:         path,
			Args:         append(append([]string{}, svc.args...), "-addr-file", svc.addrFile),
			InheritEnv:   true,
			DropEnv:      s.dropEnv,
			Ready:        svc.probe,
			ReadyTimeout: waitTimeout,
			ProbeBackoff: supervisor.Backoff{Initial: 5 * time.Millisecond, Max: 200 * time.Millisecond},
			TermGrace:    15 * time.Second,
			Restart:      supervisor.RestartPolicy{Enabled: true},
			LogFile:      filepath.Join(s.opts.DataDir, "logs", svc.name+".log"),
		}
		if out := s.opts.LogOutput; out != nil {
			name := svc.name
			spec.OnLine = func(l supervisor.Line) { fmt.Fprintf(out, "%-12s | %s\n", name, l.Text) }
		}
		if err := os.MkdirAll(filepath.Dir(spec.LogFile), 0o700); err != nil {
			return fmt.Errorf("create log dir: %w", err)
		}
		go func(svc *service) {
			if err := sup.Start(ctx, spec); err != nil {
				errc <- fmt.Errorf("start %s: %w", svc.name, err)
				return
			}
			errc <- nil
		}(svc)
	}
	var errs []error
	for range svcs {
		errs = append(errs, <-errc)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, svc := range svcs {
		s.addrs[svc.name] = svc.readAddr()
		s.addrs[MetricsName(svc.name)] = addrfile.Read(filepath.Join(runDir, MetricsName(svc.name)+".addr"))
		s.log.Info("service ready", "service", svc.name, "addr", s.addrs[svc.name])
	}
	return nil
}

// MetricsName is the name of a service's /metrics address (Addr, and run/<it>.addr).
func MetricsName(service string) string { return service + "-metrics" }

// dropEnv keeps the launcher's own token settings (GENAILAB_<SERVICE>_TOKEN and
// _TOKEN_FILE, e.g. GENAILAB_GATEWAY_BACKEND_TOKEN) from the services when the stack
// hands them its token: a service given both a -token-file and a token in its
// environment refuses to start.
func (s *Stack) dropEnv(key string) bool {
	return s.tokenFile != "" && strings.HasPrefix(key, "GENAILAB_") &&
		(strings.HasSuffix(key, "_TOKEN") || strings.HasSuffix(key, "_TOKEN_FILE"))
}

// Stop stops the services in reverse order (gateway first, engines' services last),
// each with the full SIGTERM/SIGKILL sequence, then removes the token file.
func (s *Stack) Stop(ctx context.Context) {
	for i := len(s.sups) - 1; i >= 0; i-- {
		if err := s.sups[i].Close(ctx); err != nil {
			s.log.Warn("stop service", "service", s.sups[i].Name(), "err", err)
		}
	}
	if s.tokenFile != "" {
		if err := os.Remove(s.tokenFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove token file", "err", err)
		}
	}
}

// Run starts the stack, prints where it listens, and serves until ctx is done.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	images := ""
	if d := opts.Diffusion; d.Sentence != "" {
		images = "  " + d.Sentence + "\n"
		if d.Hint != "" {
			images += "    (" + d.Hint + ")\n"
		}
	}
	fmt.Fprintf(out, "\ngenailab is up.\n  REST gateway:      http://%s  (try: curl http://%s/health)\n  seed HTTP wrapper: http://%s\n  gRPC: llm %s, diffusion %s, monitor %s, orchestrator %s\n%s  data: %s\nPress Ctrl-C to stop.\n\n",
		s.Addr("gateway"), s.Addr("gateway"), s.Addr("diffusion-http"), s.Addr("llm"), s.Addr("diffusion"), s.Addr("monitor"), s.Addr("orchestrator"), images, opts.DataDir)
	<-ctx.Done()
	fmt.Fprintln(out, "stopping genailab...")
	sctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	s.Stop(sctx)
	return nil
}

// Pids returns the process ids of the running services.
func (s *Stack) Pids() []int {
	var pids []int
	for _, sup := range s.sups {
		if p := sup.Snapshot().Pid; p != 0 {
			pids = append(pids, p)
		}
	}
	return pids
}
