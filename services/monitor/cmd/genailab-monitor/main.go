// Command genailab-monitor runs the monitor: system information and
// streamed CPU, RAM, GPU and VRAM telemetry over gRPC, and Prometheus
// /metrics.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/genailab/genailab/pkg/config"
	"github.com/genailab/genailab/pkg/logging"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/monitor/internal/server"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genailab-monitor:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("genailab-monitor", flag.ContinueOnError)
	var o server.Options
	fs.StringVar(&o.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address")
	fs.StringVar(&o.HealthAddr, "health-addr", "", "plaintext gRPC health-only listen address for probes (empty: none)")
	fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound gRPC address to this file once listening")
	fs.StringVar(&o.Token, "token", "", "bearer token required from callers")
	var tlsFlags tlsconfig.ServerFlags
	tlsFlags.Register(fs)
	fs.StringVar(&o.MetricsAddr, "metrics-addr", server.DefaultMetricsAddr, `HTTP listen address of /metrics ("off" disables it)`)
	fs.StringVar(&o.MetricsAddrFile, "metrics-addr-file", "", "write the bound metrics address to this file once listening")
	fs.BoolVar(&o.AllowRemoteMetrics, "metrics-allow-remote", false, "allow /metrics (unauthenticated) on a non-loopback address")
	fs.StringVar(&o.DataDir, "data-dir", server.DefaultDataDir, "data directory whose free disk space is reported")
	managed := fs.String("managed-names", server.FormatManagedNames(telemetry.DefaultManagedNames()),
		"engine executables attributed to this host's services, as name=role pairs")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := config.Parse(fs, os.Args[1:], "GENAILAB_MONITOR_"); err != nil {
		return err
	}
	names, err := server.ParseManagedNames(*managed)
	if err != nil {
		return err
	}
	o.ManagedProcessNames = names
	log, err := logging.New(os.Stderr, "monitor", *level, *format)
	if err != nil {
		return err
	}
	o.Logger = log
	if o.TLS, err = tlsFlags.Config(log); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, o)
}
