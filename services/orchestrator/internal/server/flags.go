package server

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// RegisterFlags declares every option as a flag on fs (see pkg/config for the matching
// GENAILAB_ORCHESTRATOR_* environment variables and YAML keys). -hosts, -agent-ports and
// -placement-policy are parsed as they are set, so a bad value fails with the flag's name
// wherever it came from (command line, environment or YAML).
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.GRPC.Register(fs, DefaultGRPCAddr, "bearer token required from callers and sent to the services")
	o.Metrics.Register(fs)
	o.ClientTLS.Register(fs, "services")
	fs.StringVar(&o.LLMAddr, "llm-addr", "127.0.0.1:50051", "gRPC address of the LLM service")
	fs.StringVar(&o.DiffusionAddr, "diffusion-addr", "127.0.0.1:50052", "gRPC address of the diffusion service")
	fs.StringVar(&o.MonitorAddr, "monitor-addr", "127.0.0.1:50053", "gRPC address of the monitor service")
	parsedVar(fs, &o.Hosts, "hosts", "", "the lab's `hosts`, ';'-separated: name=llm-addr,diffusion-addr,monitor-addr[,budget=BYTES] (empty: the one host of -llm-addr, -diffusion-addr, -monitor-addr)", agent.ParseSpecs)
	fs.StringVar(&o.DNSName, "hosts-dns", "", "find hosts by DNS: every address of this name (e.g. a Kubernetes headless service) is a host")
	parsedVar(fs, &o.DNSPorts, "agent-ports", "50051,50052,50053", "with -hosts-dns: the LLM, diffusion and monitor gRPC `ports` of every host", agent.ParsePorts)
	fs.DurationVar(&o.HostCheckInterval, "host-check-interval", 0, "time between health checks of each host (0: 2s)")
	fs.DurationVar(&o.KeepaliveTime, "agent-keepalive-time", DefaultKeepaliveTime, "keepalive ping of the connections to the hosts after this long without traffic (at least 10s)")
	fs.DurationVar(&o.KeepaliveTimeout, "agent-keepalive-timeout", DefaultKeepaliveTimeout, "a connection to a host whose ping or data stays unacknowledged this long is closed (a dead link fails its streams)")
	parsedVar(fs, &o.Placement.Policy, "placement-policy", "binpack", "among equally good hosts, the `policy`: binpack (tightest fit) or spread (most memory left)", place.ParsePolicy)
	fs.IntVar(&o.Placement.Attempts, "placement-attempts", 3, "hosts one image is tried on when hosts fail")
	fs.StringVar(&o.Placement.DiffusionModel, "diffusion-model", "", "the lab's diffusion model: only hosts that have it take images (empty: each host's configured model)")
	fs.IntVar(&o.Workers, "workers", 0, "images run at once (0: one per host; 64 with -hosts-dns)")
	fs.StringVar(&o.DataDir, "data-dir", DefaultDataDir, "data directory: state database and images in <dir>/orchestrator")
	fs.StringVar(&o.Host, "host-name", "", "name of this host in events, jobs and saved states (empty: local)")
	parsedVar(fs, &o.QueueSize, "queue-size", "8", "images that may wait in the queue (an `int`, at least 1); more are refused (429)", parseQueueSize)
	fs.IntVar(&o.Retain, "retain-jobs", 500, "finished jobs (and their images) kept in the gallery")
	fs.IntVar(&o.MaxEvents, "max-events", 5000, "events kept in the database for the timeline")
	fs.StringVar(&o.State, "state", StateBolt, "the state store: bbolt (a file in -data-dir, one orchestrator) or etcd (-etcd-endpoints; several replicas, one leader elected)")
	o.Etcd.Register(fs)
	fs.StringVar(&o.EtcdPrefix, "etcd-prefix", state.DefaultEtcdPrefix, "with -state etcd: the key prefix of the orchestrator's records")
	fs.DurationVar(&o.LeaderTTL, "leader-ttl", 2*time.Second, "with -state etcd: lease of the leadership (whole seconds); a dead leader is replaced within about this")
	fs.StringVar(&o.AdvertiseAddr, "advertise-addr", "", "with -state etcd: the gRPC address the other replicas reach this one at (the followers forward writes to the leader's; empty: the listen address)")
	fs.StringVar(&o.PeerServerName, "peer-server-name", "", "with -state etcd and -tls-ca: the name expected in the other replicas' certificates (empty: the host of each -advertise-addr)")
	fs.Uint64Var(&o.Probe.HeadroomBytes, "headroom-bytes", DefaultHeadroom, "memory kept free on top of an image's estimate")
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
	fs.BoolVar(&o.Cycle.LateReload, "late-reload", false, "reload the LLM only once the image is delivered, not as soon as the engine has finished (the old behaviour; for benchmarks)")
	fs.DurationVar(&o.Cycle.GenerationTimeoutMax, "generation-timeout-max", cycle.DefaultGenerationTimeoutMax, "hard cap of a generation's derived deadline")
}

// SetLogger sets the logger (cmdmain.Serve hands it over).
func (o *Options) SetLogger(log *slog.Logger) { o.Logger = log }

// Validate checks the options that need no I/O; Run calls it first.
func (o Options) Validate() error {
	if o.KeepaliveTime < 0 || o.KeepaliveTimeout < 0 {
		return errors.New("-agent-keepalive-time and -agent-keepalive-timeout must not be negative")
	}
	switch o.State {
	case "", StateBolt:
	case StateEtcd:
		if err := o.Etcd.Validate(); err != nil {
			return err
		}
		if o.LeaderTTL != 0 && (o.LeaderTTL < time.Second || o.LeaderTTL%time.Second != 0) {
			return fmt.Errorf("-leader-ttl must be whole seconds, at least 1s, got %s", o.LeaderTTL)
		}
	default:
		return fmt.Errorf("-state must be %s or %s, got %q", StateBolt, StateEtcd, o.State)
	}
	if o.QueueSize < 0 {
		return fmt.Errorf("-queue-size must be at least 1, got %d", o.QueueSize)
	}
	return nil
}

// parseQueueSize reads -queue-size: a flag cannot ask for the default (0) of Options.QueueSize.
func parseQueueSize(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	if n < 1 {
		return 0, fmt.Errorf("must be at least 1, got %d", n)
	}
	return n, nil
}

// parsedVar declares a flag whose text is parsed into *dst when it is set (def, the
// default, is parsed at once).
func parsedVar[T any](fs *flag.FlagSet, dst *T, name, def, usage string, parse func(string) (T, error)) {
	v := &parsedValue[T]{dst: dst, parse: parse}
	if err := v.Set(def); err != nil {
		panic(fmt.Sprintf("flag -%s: default %q: %v", name, def, err))
	}
	fs.Var(v, name, usage)
}

type parsedValue[T any] struct {
	dst   *T
	text  string
	parse func(string) (T, error)
}

func (v *parsedValue[T]) String() string {
	if v == nil {
		return ""
	}
	return v.text
}

func (v *parsedValue[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.dst, v.text = x, s
	return nil
}
