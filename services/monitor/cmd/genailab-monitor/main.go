// Command genailab-monitor runs the monitor: system information and
// streamed CPU, RAM, GPU and VRAM telemetry over gRPC, and Prometheus
// /metrics.
package main

import (
	"context"
	"log/slog"

	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/monitor/internal/server"
)

func main() {
	var o server.Options
	cmdmain.Main(cmdmain.Command{
		Name: "genailab-monitor", Service: "monitor", EnvPrefix: "GENAILAB_MONITOR_",
		Flags: o.RegisterFlags,
		Run: func(ctx context.Context, log *slog.Logger) error {
			o.Logger = log
			return server.Run(ctx, o)
		},
	})
}
