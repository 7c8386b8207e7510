package server

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/llm/internal/service"
)

// RegisterFlags declares every option as a flag on fs (see pkg/config for the matching
// GENAILAB_LLM_* environment variables and YAML keys).
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.GRPC.Register(fs, DefaultGRPCAddr, "bearer token required from callers")
	o.Metrics.Register(fs)
	fs.StringVar(&o.DataDir, "data-dir", DefaultDataDir, "data directory: models in <dir>/models/llm, logs and pid file in <dir>/llm")
	fs.Uint64Var(&o.MinFreeBytes, "min-free-bytes", 0, "free disk space a model download must leave (0: 5 % of the volume, at most 1 GiB)")
	fs.Int64Var(&o.SlotBudgetBytes, "slot-budget-bytes", service.DefaultSlotBudget, "bytes of conversations' KV caches saved across an offload (in <data-dir>/llm/slots; least recently used dropped first; 0: the default)")
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
}

// SetLogger sets the logger (cmdmain.Serve hands it over).
func (o *Options) SetLogger(log *slog.Logger) { o.Logger = log }

// Validate checks the options that need no I/O; Run calls it first.
func (o Options) Validate() error {
	if o.Autostart && o.DefaultModel == "" {
		return errors.New("autostart needs a default model (-default-model)")
	}
	if o.DefaultModel != "" {
		if err := modelstore.ValidateID(o.DefaultModel); err != nil {
			return fmt.Errorf("default model: %w", err)
		}
	}
	return nil
}
