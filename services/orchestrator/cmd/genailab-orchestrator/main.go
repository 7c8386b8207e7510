// Command genailab-orchestrator runs the orchestrator: image generation with automatic
// LLM offload and reload, placed on the lab's hosts (-hosts, -hosts-dns, or the one host of
// -llm-addr, -diffusion-addr and -monitor-addr), whose services it reaches by their gRPC
// addresses.
// Every flag can also be set as GENAILAB_ORCHESTRATOR_<FLAG> or in a YAML file (-config).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/server"
)

func main() {
	var hostsFlag, agentPorts, policy string
	var o server.Options
	var tlsFlags tlsconfig.ServerFlags
	var dialTLS tlsconfig.ClientFlags
	cmdmain.Main(cmdmain.Command{
		Name: "genailab-orchestrator", Service: "orchestrator", EnvPrefix: "GENAILAB_ORCHESTRATOR_",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address")
			fs.StringVar(&o.HealthAddr, "health-addr", "", "plaintext gRPC health-only listen address for probes (empty: none)")
			fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound address to this file once listening")
			auth.TokenFlags(fs, &o.Token, "token", "bearer token required from callers and sent to the services")
			tlsFlags.Register(fs)
			dialTLS.Register(fs, "services")
			fs.StringVar(&o.LLMAddr, "llm-addr", "127.0.0.1:50051", "gRPC address of the LLM service")
			fs.StringVar(&o.DiffusionAddr, "diffusion-addr", "127.0.0.1:50052", "gRPC address of the diffusion service")
			fs.StringVar(&o.MonitorAddr, "monitor-addr", "127.0.0.1:50053", "gRPC address of the monitor service")
			fs.StringVar(&hostsFlag, "hosts", "", "the lab's hosts, ';'-separated: name=llm-addr,diffusion-addr,monitor-addr[,budget=BYTES] (empty: the one host of -llm-addr, -diffusion-addr, -monitor-addr)")
			fs.StringVar(&o.DNSName, "hosts-dns", "", "find hosts by DNS: every address of this name (e.g. a Kubernetes headless service) is a host")
			fs.StringVar(&agentPorts, "agent-ports", "50051,50052,50053", "with -hosts-dns: the LLM, diffusion and monitor gRPC ports of every host")
			fs.DurationVar(&o.HostCheckInterval, "host-check-interval", 0, "time between health checks of each host (0: 2s)")
			fs.DurationVar(&o.KeepaliveTime, "agent-keepalive-time", server.DefaultKeepaliveTime, "keepalive ping of the connections to the hosts after this long without traffic (at least 10s)")
			fs.DurationVar(&o.KeepaliveTimeout, "agent-keepalive-timeout", server.DefaultKeepaliveTimeout, "a connection to a host whose ping or data stays unacknowledged this long is closed (a dead link fails its streams)")
			fs.StringVar(&policy, "placement-policy", "binpack", "among equally good hosts: binpack (tightest fit) or spread (most memory left)")
			fs.IntVar(&o.Placement.Attempts, "placement-attempts", 3, "hosts one image is tried on when hosts fail")
			fs.StringVar(&o.Placement.DiffusionModel, "diffusion-model", "", "the lab's diffusion model: only hosts that have it take images (empty: each host's configured model)")
			fs.IntVar(&o.Workers, "workers", 0, "images run at once (0: one per host; 64 with -hosts-dns)")
			fs.StringVar(&o.DataDir, "data-dir", server.DefaultDataDir, "data directory: state database and images in <dir>/orchestrator")
			fs.StringVar(&o.Host, "host-name", "", "name of this host in events, jobs and saved states (empty: local)")
			fs.IntVar(&o.QueueSize, "queue-size", 8, "images that may wait in the queue; more are refused (429)")
			fs.IntVar(&o.Retain, "retain-jobs", 500, "finished jobs (and their images) kept in the gallery")
			fs.IntVar(&o.MaxEvents, "max-events", 5000, "events kept in the database for the timeline")
			fs.Uint64Var(&o.Probe.HeadroomBytes, "headroom-bytes", server.DefaultHeadroom, "memory kept free on top of an image's estimate")
			fs.Uint64Var(&o.Probe.BudgetBytes, "budget-bytes", 0, "memory the engines may use together on the GPU (or in RAM); 0: no budget")
			fs.IntVar(&o.Probe.GPUIndex, "gpu-index", 0, "GPU the engines use (NVML index)")
			fs.Float64Var(&o.Probe.WeightsFactor, "diffusion-weights-factor", 0, fmt.Sprintf("diffusion estimate: component sizes × this (0: %g)", estimate.DefaultWeightsFactor))
			fs.Float64Var(&o.Probe.BytesPerPixel, "diffusion-bytes-per-pixel", 0, fmt.Sprintf("diffusion estimate: bytes per output pixel (0: %d)", estimate.DefaultBytesPerPixel))
			fs.StringVar(&o.Probe.LLMModelsDir, "llm-models-dir", "", "the LLM service's model directory on this machine (<its data dir>/models/llm): estimate the LLM from the GGUF file with gguf-parser-go")
			fs.DurationVar(&o.Cycle.DrainTimeout, "drain-timeout", 0, "how long in-flight chat requests may finish before an offload (0: 10s)")
			fs.DurationVar(&o.Cycle.StopTimeout, "stop-timeout", 0, "bound of the LLM stop (0: 60s)")
			fs.DurationVar(&o.Cycle.FreeTimeout, "free-timeout", 0, "how long to wait for the monitor to show the LLM's memory freed (0: 15s)")
			fs.DurationVar(&o.Cycle.ReloadTimeout, "reload-timeout", 0, "bound of all reload attempts together (0: 5m)")
			fs.DurationVar(&o.Cycle.ReadyTimeout, "ready-timeout", 0, "readiness wait of each reload attempt (0: 2m)")
			fs.DurationVar(&o.Cycle.BackoffMin, "reload-backoff", 0, "first wait between reload attempts, doubling (0: 500ms)")
			fs.DurationVar(&o.Cycle.BackoffMax, "reload-backoff-max", 0, "longest wait between reload attempts (0: 10s)")
			fs.DurationVar(&o.Cycle.GenerationTimeout, "generation-timeout", 0, "total deadline of one generation (0: 4 × the measured time of its steps, at least 3m, at most -generation-timeout-max)")
			fs.DurationVar(&o.Cycle.GenerationTimeoutMax, "generation-timeout-max", cycle.DefaultGenerationTimeoutMax, "hard cap of a generation's derived deadline")
		},
		Run: func(ctx context.Context, log *slog.Logger) (err error) {
			if o.Hosts, err = agent.ParseSpecs(hostsFlag); err != nil {
				return fmt.Errorf("-hosts: %w", err)
			}
			if o.DNSPorts, err = agent.ParsePorts(agentPorts); err != nil {
				return fmt.Errorf("-agent-ports: %w", err)
			}
			if o.Placement.Policy, err = place.ParsePolicy(policy); err != nil {
				return fmt.Errorf("-placement-policy: %w", err)
			}
			if o.KeepaliveTime < 0 || o.KeepaliveTimeout < 0 {
				return fmt.Errorf("-agent-keepalive-time and -agent-keepalive-timeout must not be negative")
			}
			if o.QueueSize < 1 {
				return fmt.Errorf("-queue-size must be at least 1, got %d", o.QueueSize)
			}
			o.Logger = log
			if o.TLS, err = tlsFlags.Config(log); err != nil {
				return err
			}
			if o.ClientTLS, err = dialTLS.Config(); err != nil {
				return err
			}
			return server.Run(ctx, o)
		},
	})
}
