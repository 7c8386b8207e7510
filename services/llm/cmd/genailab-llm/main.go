// Command genailab-llm runs the LLM service: it supervises one llama-server
// on this host, relays chat to it, and manages the llm model store, over
// gRPC. Every flag can also be set as GENAILAB_LLM_<FLAG> or in a YAML file
// (-config).
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/llm/internal/server"
	"github.com/genailab/genailab/services/llm/internal/service"
)

func main() {
	var o server.Options
	var tlsFlags tlsconfig.ServerFlags
	cmdmain.Main(cmdmain.Command{
		Name: "genailab-llm", Service: "llm", EnvPrefix: "GENAILAB_LLM_",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address")
			fs.StringVar(&o.HealthAddr, "health-addr", "", "plaintext gRPC health-only listen address for probes (empty: none)")
			fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound address to this file once listening")
			auth.TokenFlags(fs, &o.Token, "token", "bearer token required from callers")
			tlsFlags.Register(fs)
			fs.StringVar(&o.DataDir, "data-dir", server.DefaultDataDir, "data directory: models in <dir>/models/llm, logs and pid file in <dir>/llm")
			fs.Uint64Var(&o.MinFreeBytes, "min-free-bytes", 0, "free disk space a model download must leave (0: 5 % of the volume, at most 1 GiB)")
			fs.StringVar(&o.LlamaServer, "llama-server", "", "llama-server executable (default: GENAILAB_LLAMA_SERVER, PATH, then <repo>/.engines/llama/bin)")
			fs.StringVar(&o.DefaultModel, "default-model", "", "model id used when Start names none (and started at boot with -autostart)")
			fs.BoolVar(&o.Autostart, "autostart", false, "start the default model at boot, with automatic restarts")
			fs.DurationVar(&o.ReadyTimeout, "ready-timeout", service.DefaultReadyTimeout, "default bound of a start (model load)")
			fs.DurationVar(&o.ChatWaitTimeout, "chat-wait-timeout", service.DefaultChatWaitTimeout, "default bound of a chat's wait for an offloaded or starting server")
			fs.BoolVar(&o.AllowEngineRemoteBind, "allow-engine-remote-bind", false, "let Start ask llama-server to listen on a non-loopback host (it then requires an API key only this service holds; default: loopback only)")
			fs.DurationVar(&o.Restart.Backoff.Initial, "restart-backoff", supervisor.DefaultRestartInitial, "delay before the first automatic restart of a crashed llama-server; doubled at every crash in a row")
			fs.DurationVar(&o.Restart.Backoff.Max, "restart-backoff-max", supervisor.DefaultRestartMaxDelay, "cap of the delay between automatic restarts of a crash-looping llama-server")
			fs.DurationVar(&o.Restart.ResetAfter, "restart-reset-after", supervisor.DefaultRestartResetAfter, "a llama-server that ran this long before crashing is restarted after -restart-backoff again")
			fs.IntVar(&o.Restart.MaxRestarts, "restart-limit", 0, "give up after this many automatic restarts within -restart-window (0: never give up)")
			fs.DurationVar(&o.Restart.Window, "restart-window", supervisor.DefaultRestartWindow, "window of -restart-limit")
		},
		Run: func(ctx context.Context, log *slog.Logger) (err error) {
			o.Logger = log
			if o.TLS, err = tlsFlags.Config(log); err != nil {
				return err
			}
			return server.Run(ctx, o)
		},
	})
}
