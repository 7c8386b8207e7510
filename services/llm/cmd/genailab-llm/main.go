// Command genailab-llm runs the LLM service: it supervises one llama-server
// on this host, relays chat to it, and manages the llm model store, over
// gRPC. Every flag can also be set as GENAILAB_LLM_<FLAG> or in a YAML file
// (-config).
package main

import (
	"context"
	"log/slog"

	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/services/llm/internal/server"
)

func main() {
	var o server.Options
	cmdmain.Main(cmdmain.Command{
		Name: "genailab-llm", Service: "llm", EnvPrefix: "GENAILAB_LLM_",
		Flags: o.RegisterFlags,
		Run: func(ctx context.Context, log *slog.Logger) error {
			o.Logger = log
			return server.Run(ctx, o)
		},
	})
}
