// Command genailab-orchestrator runs the orchestrator: image generation with automatic
// LLM offload and reload across the services of a host.
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
	"github.com/genailab/genailab/services/orchestrator/internal/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genailab-orchestrator:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("genailab-orchestrator", flag.ContinueOnError)
	var o server.Options
	fs.StringVar(&o.GRPCAddr, "grpc-addr", "127.0.0.1:50054", "gRPC listen address")
	fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound address to this file once listening")
	fs.StringVar(&o.Token, "token", "", "bearer token required from callers and sent to the services")
	fs.StringVar(&o.LLMAddr, "llm-addr", "127.0.0.1:50051", "gRPC address of the LLM service")
	fs.StringVar(&o.DiffusionAddr, "diffusion-addr", "127.0.0.1:50052", "gRPC address of the diffusion service")
	fs.StringVar(&o.MonitorAddr, "monitor-addr", "127.0.0.1:50053", "gRPC address of the monitor service")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := config.Parse(fs, os.Args[1:], "GENAILAB_ORCHESTRATOR_"); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "orchestrator", *level, *format)
	if err != nil {
		return err
	}
	o.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, o)
}
