package server

import (
	"cmp"
	"flag"
	"fmt"
	"log/slog"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// DefaultHTTPAddr is the default listen address.
const DefaultHTTPAddr = "127.0.0.1:8080"

// RegisterFlags declares every option as a flag on fs (see pkg/config for the matching
// GENAILAB_GATEWAY_* environment variables and YAML keys).
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.HTTPAddr, "http-addr", DefaultHTTPAddr, "HTTP listen address")
	fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound address to this file once listening")
	o.Metrics.Register(fs)
	fs.StringVar(&o.Backends.LLM, "llm-addr", "127.0.0.1:50051", "gRPC address of the LLM service")
	fs.StringVar(&o.Backends.Diffusion, "diffusion-addr", "127.0.0.1:50052", "gRPC address of the diffusion service")
	fs.StringVar(&o.Backends.Monitor, "monitor-addr", "127.0.0.1:50053", "gRPC address of the monitor service")
	fs.StringVar(&o.Backends.Orchestrator, "orchestrator-addr", "127.0.0.1:50054", "gRPC address of the orchestrator")
	auth.TokenFlags(fs, &o.Token, "token", "bearer token required from HTTP clients (required off loopback)")
	auth.TokenFlags(fs, &o.BackendToken, "backend-token", "bearer token sent to the gRPC services")
	o.TLS.Register(fs)
	o.BackendTLS.Register(fs, "services")
	fs.BoolVar(&o.AllowInsecureRemote, "allow-insecure-remote", false, "allow a non-loopback address without a token")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", gateway.DefaultMaxBodyBytes, "largest accepted request body")
}

// SetLogger sets the logger (cmdmain.Serve hands it over).
func (o *Options) SetLogger(log *slog.Logger) { o.Logger = log }

// Validate checks the options that need no I/O; Run calls it first. Off loopback the gateway
// needs a token (or AllowInsecureRemote).
func (o Options) Validate() error {
	addr := cmp.Or(o.HTTPAddr, DefaultHTTPAddr)
	if !grpcserver.IsLoopback(addr) && o.Token == "" && !o.AllowInsecureRemote {
		return fmt.Errorf("gateway on %s: %w", addr, grpcserver.ErrInsecureRemote)
	}
	return nil
}
