// Command genailab-monitor runs the monitor: system information and
// streamed CPU, RAM, GPU and VRAM telemetry over gRPC, and Prometheus
// /metrics.
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/monitor/internal/server"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

func main() {
	var o server.Options
	var tlsFlags tlsconfig.ServerFlags
	var managed string
	cmdmain.Main(cmdmain.Command{
		Name: "genailab-monitor", Service: "monitor", EnvPrefix: "GENAILAB_MONITOR_",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address")
			fs.StringVar(&o.HealthAddr, "health-addr", "", "plaintext gRPC health-only listen address for probes (empty: none)")
			fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound gRPC address to this file once listening")
			auth.TokenFlags(fs, &o.Token, "token", "bearer token required from callers")
			tlsFlags.Register(fs)
			fs.StringVar(&o.MetricsAddr, "metrics-addr", server.DefaultMetricsAddr, `HTTP listen address of /metrics ("off" disables it)`)
			fs.StringVar(&o.MetricsAddrFile, "metrics-addr-file", "", "write the bound metrics address to this file once listening")
			fs.BoolVar(&o.AllowRemoteMetrics, "metrics-allow-remote", false, "allow /metrics (unauthenticated) on a non-loopback address")
			fs.StringVar(&o.DataDir, "data-dir", server.DefaultDataDir, "data directory whose free disk space is reported")
			fs.StringVar(&managed, "managed-names", server.FormatManagedNames(telemetry.DefaultManagedNames()),
				"engine executables attributed to this host's services, as name=role pairs")
			fs.StringVar(&o.ManagedPIDDir, "managed-pid-dir", "",
				"directory of the host's services' pid files: a process matched by -managed-names counts only if it descends from one (empty: the name suffices)")
		},
		Run: func(ctx context.Context, log *slog.Logger) (err error) {
			if o.ManagedProcessNames, err = server.ParseManagedNames(managed); err != nil {
				return err
			}
			o.Logger = log
			if o.TLS, err = tlsFlags.Config(log); err != nil {
				return err
			}
			return server.Run(ctx, o)
		},
	})
}
