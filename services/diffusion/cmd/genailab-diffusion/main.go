// Command genailab-diffusion runs the diffusion service: stable-diffusion.cpp (per-request
// sd-cli or a persistent sd-server) behind the gRPC DiffusionService and ModelService, and the
// seed's HTTP wrapper. With -demo-engines and no stand-in binaries around, it also acts as the
// sd.cpp stand-ins itself (selected by an environment variable it sets for its children).
//
// Pointing it at the real stable-diffusion.cpp: build or download sd-cli and sd-server
// (https://github.com/leejet/stable-diffusion.cpp releases), then either put them on PATH
// (sd-cli, or the older name sd; sd-server) or give their paths:
//
//	genailab-diffusion -sd-cli /opt/sdcpp/sd-cli -sd-server /opt/sdcpp/sd-server
//	GENAILAB_DIFFUSION_SD_CLI=/opt/sdcpp/sd-cli GENAILAB_DIFFUSION_SD_SERVER=/opt/sdcpp/sd-server genailab-diffusion
//
// (or the keys sd-cli and sd-server in the -config YAML file). Without -demo-engines nothing else
// changes: the same arguments, output parsing and job API are used for the real programs, whose
// captured behaviour the stand-ins reproduce. GetInfo's unavailable_reason says when no binary
// was found.
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
	var tlsFlags tlsconfig.ServerFlags
	tlsFlags.Register(fs)
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
	if o.TLS, err = tlsFlags.Config(log); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, o)
}
