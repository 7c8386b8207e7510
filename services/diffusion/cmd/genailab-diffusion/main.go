// Command genailab-diffusion runs the diffusion service: stable-diffusion.cpp (per-request
// sd-cli or a persistent sd-server) behind the gRPC DiffusionService and ModelService, and the
// seed's HTTP wrapper. With -demo-engines and no stand-in binaries around, it also acts as the
// sd.cpp stand-ins itself (selected by an environment variable it sets for its children).
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
	"github.com/genailab/genailab/services/diffusion/internal/selfstandin"
	"github.com/genailab/genailab/services/diffusion/internal/server"
)

func main() {
	selfstandin.RunIfAsked()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genailab-diffusion:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("genailab-diffusion", flag.ContinueOnError)
	var o server.Options
	o.RegisterFlags(fs)
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := config.Parse(fs, os.Args[1:], "GENAILAB_DIFFUSION_"); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "diffusion", *level, *format)
	if err != nil {
		return err
	}
	o.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, o)
}
