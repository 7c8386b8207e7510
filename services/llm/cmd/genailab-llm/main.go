// Command genailab-llm runs the LLM service: it supervises one llama-server
// on this host, relays chat to it, and manages the llm model store, over
// gRPC. Every flag can also be set as GENAILAB_LLM_<FLAG> or in a YAML file
// (-config).
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
	"github.com/genailab/genailab/services/llm/internal/server"
	"github.com/genailab/genailab/services/llm/internal/service"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genailab-llm:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("genailab-llm", flag.ContinueOnError)
	var o server.Options
	fs.StringVar(&o.GRPCAddr, "grpc-addr", server.DefaultGRPCAddr, "gRPC listen address")
	fs.StringVar(&o.HealthAddr, "health-addr", "", "plaintext gRPC health-only listen address for probes (empty: none)")
	fs.StringVar(&o.AddrFile, "addr-file", "", "write the bound address to this file once listening")
	fs.StringVar(&o.Token, "token", "", "bearer token required from callers")
	var tlsFlags tlsconfig.ServerFlags
	tlsFlags.Register(fs)
	fs.StringVar(&o.DataDir, "data-dir", server.DefaultDataDir, "data directory: models in <dir>/models/llm, logs and pid file in <dir>/llm")
	fs.StringVar(&o.LlamaServer, "llama-server", "", "llama-server executable (default: GENAILAB_LLAMA_SERVER, PATH, then <repo>/.engines/llama/bin)")
	fs.StringVar(&o.DefaultModel, "default-model", "", "model id used when Start names none (and started at boot with -autostart)")
	fs.BoolVar(&o.Autostart, "autostart", false, "start the default model at boot, with automatic restarts")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", service.DefaultReadyTimeout, "default bound of a start (model load)")
	fs.DurationVar(&o.ChatWaitTimeout, "chat-wait-timeout", service.DefaultChatWaitTimeout, "default bound of a chat's wait for an offloaded or starting server")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := config.Parse(fs, os.Args[1:], "GENAILAB_LLM_"); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "llm", *level, *format)
	if err != nil {
		return err
	}
	o.Logger = log
	if o.TLS, err = tlsFlags.Config(log); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, o)
}
