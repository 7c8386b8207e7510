package server

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

// RegisterFlags declares every option as a flag on fs (see pkg/config for the matching
// GENAILAB_MONITOR_* environment variables and YAML keys).
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.GRPC.Register(fs, DefaultGRPCAddr, "bearer token required from callers")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", DefaultMetricsAddr, `HTTP listen address of /metrics ("off" disables it)`)
	fs.StringVar(&o.MetricsAddrFile, "metrics-addr-file", "", "write the bound metrics address to this file once listening")
	fs.BoolVar(&o.AllowRemoteMetrics, "metrics-allow-remote", false, "allow /metrics (unauthenticated) on a non-loopback address")
	fs.StringVar(&o.DataDir, "data-dir", DefaultDataDir, "data directory whose free disk space is reported")
	o.ManagedProcessNames = telemetry.DefaultManagedNames()
	fs.Var(managedNames{&o.ManagedProcessNames}, "managed-names", "engine executables attributed to this host's services, as `name=role` pairs")
	fs.IntVar(&o.GoMaxProcs, "gomaxprocs", DefaultGoMaxProcs, "CPUs the Go runtime runs the monitor on at once (GOMAXPROCS); 0 leaves the runtime's choice")
	fs.StringVar(&o.ManagedPIDDir, "managed-pid-dir", "",
		"directory of the host's services' pid files: a process matched by -managed-names counts only if it descends from one (empty: the name suffices)")
}

// SetLogger sets the logger (cmdmain.Serve hands it over).
func (o *Options) SetLogger(log *slog.Logger) { o.Logger = log }

// Validate checks the options that need no I/O; Run calls it first.
func (o Options) Validate() error {
	o = o.withDefaults()
	if o.MetricsAddr != MetricsOff && !grpcserver.IsLoopback(o.MetricsAddr) && !o.AllowRemoteMetrics {
		return fmt.Errorf("metrics address %s: %w", o.MetricsAddr, ErrRemoteMetrics)
	}
	if o.GoMaxProcs < 0 {
		return fmt.Errorf("gomaxprocs %d: want 0 (the Go runtime's choice) or more", o.GoMaxProcs)
	}
	return nil
}

// managedNames is the -managed-names flag: name=role pairs (ParseManagedNames).
type managedNames struct{ m *map[string]string }

func (v managedNames) String() string {
	if v.m == nil {
		return ""
	}
	return FormatManagedNames(*v.m)
}

func (v managedNames) Set(s string) error {
	m, err := ParseManagedNames(s)
	if err != nil {
		return err
	}
	*v.m = m
	return nil
}
