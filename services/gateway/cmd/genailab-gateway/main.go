// Command genailab-gateway serves the REST API (grpc-gateway) in front of genailab's
// gRPC services.
package main

import (
	"context"
	"log/slog"

	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/gateway/internal/server"
)

func main() {
	var o server.Options
	cmdmain.Main(cmdmain.Command{
		Name: "genailab-gateway", Service: "gateway", EnvPrefix: "GENAILAB_GATEWAY_",
		Flags: o.RegisterFlags,
		Run: func(ctx context.Context, log *slog.Logger) error {
			o.Logger = log
			return server.Run(ctx, o)
		},
	})
}
