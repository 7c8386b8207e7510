// Command genailab-monitor runs the monitor: system information and
// streamed CPU, RAM, GPU and VRAM telemetry over gRPC, and Prometheus
// /metrics.
package main

import (
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/monitor/internal/server"
)

func main() { cmdmain.Serve[server.Options]("genailab-monitor", server.Run) }
