// Command genailab-gateway serves the REST API (grpc-gateway) in front of genailab's
// gRPC services.
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
	"github.com/genailab/genailab/services/gateway/internal/gateway"
	"github.com/genailab/genailab/services/gateway/internal/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genailab-gateway:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("genailab-gateway", flag.ContinueOnError)
	var o server.Options
	fs.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound address to this file once listening")
	fs.StringVar(&o.Backends.LLM, "llm-addr", "127.0.0.1:50051", "gRPC address of the LLM service")
	fs.StringVar(&o.Backends.Diffusion, "diffusion-addr", "127.0.0.1:50052", "gRPC address of the diffusion service")
	fs.StringVar(&o.Backends.Monitor, "monitor-addr", "127.0.0.1:50053", "gRPC address of the monitor service")
	fs.StringVar(&o.Backends.Orchestrator, "orchestrator-addr", "127.0.0.1:50054", "gRPC address of the orchestrator")
	fs.StringVar(&o.Token, "token", "", "bearer token required from HTTP clients (required off loopback)")
	fs.StringVar(&o.BackendToken, "backend-token", "", "bearer token sent to the gRPC services")
	var tlsFlags tlsconfig.ServerFlags
	tlsFlags.Register(fs)
	var backendTLS tlsconfig.ClientFlags
	backendTLS.Register(fs, "services")
	fs.BoolVar(&o.AllowInsecureRemote, "allow-insecure-remote", false, "allow a non-loopback address without a token")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", gateway.DefaultMaxBodyBytes, "largest accepted request body")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := config.Parse(fs, os.Args[1:], "GENAILAB_GATEWAY_"); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "gateway", *level, *format)
	if err != nil {
		return err
	}
	o.Logger = log
	if o.TLS, err = tlsFlags.Config(log); err != nil {
		return err
	}
	if o.BackendTLS, err = backendTLS.Config(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, o)
}
