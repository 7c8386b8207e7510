package server

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/monitor/internal/history"
	"github.com/genailab/genailab/services/monitor/internal/sampler"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

// Defaults.
const (
	DefaultGRPCAddr    = "127.0.0.1:50053"
	DefaultMetricsAddr = "127.0.0.1:9403"
	DefaultDataDir     = ".data"
	// DefaultWatchInterval is WatchUsage's interval when the request gives 0.
	DefaultWatchInterval = time.Second
	// DefaultGoMaxProcs is the command's -gomaxprocs: one P, as node_exporter
	// defaults to. The monitor's work is a sampling pass and the sends to its
	// subscribers; on one P the pass's sends and gRPC's writer take turns on
	// one thread instead of waking each other across two for every message
	// (BENCHMARKS.md: 20–30 % less CPU per subscriber), and no idle P
	// spins looking for work on a host whose CPUs belong to the engines.
	DefaultGoMaxProcs = 1
)

// Options configure the monitor.
type Options struct {
	// GRPC is the gRPC listener (address, default 127.0.0.1:50053; health-only address;
	// address file; the token required on every call; TLS).
	GRPC grpcserver.Flags
	// MetricsAddr is the HTTP listen address of /metrics (default
	// 127.0.0.1:9403); "off" disables it. A non-loopback address needs
	// AllowRemoteMetrics, since /metrics is not authenticated.
	MetricsAddr        string
	AllowRemoteMetrics bool
	// MetricsAddrFile receives the bound metrics address once listening.
	MetricsAddrFile string

	// DataDir is the directory whose disk space is reported (default .data).
	DataDir string

	// ManagedProcessNames maps executable names to roles ("llm",
	// "diffusion"): processes with these names are attributed to this
	// host's services. nil means telemetry.DefaultManagedNames (llama-server,
	// sd-cli, sd, sd-server); an empty map disables matching by name.
	ManagedProcessNames map[string]string
	// ManagedPIDDir, when set, is a directory of pid files (as
	// pkg/supervisor writes them, e.g. the stack's <data>/run) of the
	// host's services: a process matched by name is then managed only if
	// it is one of them or descends from one, so other users' engines on
	// the same host are foreign. Re-read on every sample. Empty: a name
	// match suffices.
	ManagedPIDDir string
	// ManagedPIDs, when set, reports the PIDs the host's services run; they
	// count as managed whatever their name.
	ManagedPIDs telemetry.PIDProvider

	// NVML is the NVML library; nil loads the system's libnvidia-ml.so.1.
	// Tests pass go-nvml's mock (see package dgxtest).
	NVML telemetry.NVMLLibrary

	// HistoryStep and HistoryCapacity shape the history (default 1 s × 300:
	// five minutes).
	HistoryStep     time.Duration
	HistoryCapacity int

	// NewTicker drives the samplers; nil means real time. Tests pass a
	// manual clock.
	NewTicker sampler.NewTicker

	// GoMaxProcs is the Go runtime's GOMAXPROCS while Run runs (restored
	// when it returns); 0 leaves the runtime's own choice (the GOMAXPROCS
	// environment variable, else the CPUs it may use). The command's default
	// is DefaultGoMaxProcs.
	GoMaxProcs int

	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MetricsAddr == "" {
		o.MetricsAddr = DefaultMetricsAddr
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.ManagedProcessNames == nil {
		o.ManagedProcessNames = telemetry.DefaultManagedNames()
	}
	if o.HistoryStep <= 0 {
		o.HistoryStep = history.DefaultStep
	}
	if o.HistoryCapacity <= 0 {
		o.HistoryCapacity = history.DefaultCapacity
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ParseManagedNames parses "name=role,name=role" (e.g.
// "llama-server=llm,sd-cli=diffusion") into a ManagedProcessNames map. An
// empty string gives an empty map: no process is managed by name.
func ParseManagedNames(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		name, role, ok := strings.Cut(strings.TrimSpace(item), "=")
		name, role = strings.TrimSpace(name), strings.TrimSpace(role)
		if !ok || name == "" || role == "" || strings.ContainsAny(name, "/ ") {
			return nil, fmt.Errorf("managed process %q: want executable-name=role", item)
		}
		out[name] = role
	}
	return out, nil
}

// FormatManagedNames is the inverse of ParseManagedNames, sorted by name.
func FormatManagedNames(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for name, role := range m {
		parts = append(parts, name+"="+role)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
