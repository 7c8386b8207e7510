// Command genailab-gateway serves the REST API (grpc-gateway) in front of genailab's
// gRPC services.
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
	"github.com/genailab/genailab/services/gateway/internal/server"
)

func main() {
	var o server.Options
	var tlsFlags tlsconfig.ServerFlags
	var backendTLS tlsconfig.ClientFlags
	cmdmain.Main(cmdmain.Command{
		Name: "genailab-gateway", Service: "gateway", EnvPrefix: "GENAILAB_GATEWAY_",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address")
			fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound address to this file once listening")
			o.Metrics.Register(fs, metricsserver.DefaultGatewayAddr)
			fs.StringVar(&o.Backends.LLM, "llm-addr", "127.0.0.1:50051", "gRPC address of the LLM service")
			fs.StringVar(&o.Backends.Diffusion, "diffusion-addr", "127.0.0.1:50052", "gRPC address of the diffusion service")
			fs.StringVar(&o.Backends.Monitor, "monitor-addr", "127.0.0.1:50053", "gRPC address of the monitor service")
			fs.StringVar(&o.Backends.Orchestrator, "orchestrator-addr", "127.0.0.1:50054", "gRPC address of the orchestrator")
			auth.TokenFlags(fs, &o.Token, "token", "bearer token required from HTTP clients (required off loopback)")
			auth.TokenFlags(fs, &o.BackendToken, "backend-token", "bearer token sent to the gRPC services")
			tlsFlags.Register(fs)
			backendTLS.Register(fs, "services")
			fs.BoolVar(&o.AllowInsecureRemote, "allow-insecure-remote", false, "allow a non-loopback address without a token")
			fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", gateway.DefaultMaxBodyBytes, "largest accepted request body")
		},
		Run: func(ctx context.Context, log *slog.Logger) (err error) {
			o.Logger = log
			if o.TLS, err = tlsFlags.Config(log); err != nil {
				return err
			}
			if o.BackendTLS, err = backendTLS.Config(); err != nil {
				return err
			}
			return server.Run(ctx, o)
		},
	})
}
