package server

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/metricsserver"
	"github.com/genailab/genailab/pkg/modelstore"
)

// Defaults.
const (
	DefaultGRPCAddr = "127.0.0.1:50052"
	DefaultHTTPAddr = "127.0.0.1:8081"
	DefaultDataDir  = ".data"
	// HTTPOff as Options.HTTPAddr disables the seed HTTP wrapper.
	HTTPOff = "off"
)

// Options configure the diffusion service.
type Options struct {
	// GRPC is the gRPC listener (address, default 127.0.0.1:50052; health-only address;
	// address file; TLS; the token required from callers, on the HTTP wrapper too except
	// GET /health).
	GRPC grpcserver.Flags
	// HTTPAddr is the seed's HTTP wrapper (GET /health, POST /v1/images/generations);
	// "off" disables it. HTTPAddrFile receives its bound address.
	HTTPAddr     string
	HTTPAddrFile string
	// DataDir holds the model store (models/diffusion) and the demo model.
	DataDir string
	// MinFreeBytes is the free disk space a model download must leave (0: 5 % of the volume,
	// at most 1 GiB).
	MinFreeBytes uint64

	// SDCLI and SDServer are the stable-diffusion.cpp executables; empty means PATH (sd-cli,
	// then sd; sd-server).
	SDCLI, SDServer string
	// DemoEngines uses the stand-ins instead (synthetic images, marked demo): from DemoDir,
	// next to this executable, on PATH, or else this executable itself. It also makes the
	// model id "demo" resolve to a generated stand-in model.
	DemoEngines bool
	DemoDir     string

	// DefaultModel is the model id a Start without one uses (the demo model "demo" in demo
	// mode when empty); DefaultMode its engine mode ("cli" or "server"); Autostart starts
	// the engine with them before the service takes calls (a failed autostart is logged and
	// leaves the engine stopped with its lastError).
	DefaultModel string
	DefaultMode  string
	Autostart    bool

	// TempDir holds the per-image run directories; "" means the system's.
	TempDir string
	// StallTimeout: a generation printing nothing this long is killed (DeadlineExceeded).
	StallTimeout time.Duration
	// ReadyTimeout bounds sd-server's start when the request gives none.
	ReadyTimeout time.Duration
	// Env is added to the engines' environment.
	Env []string
	// EngineArgs are extra sd.cpp flags for every engine command line (whitespace-separated
	// in the flag; no shell involved).
	EngineArgs []string

	// Metrics serves Prometheus /metrics (metrics.go); zero: none.
	Metrics metricsserver.Options

	Logger *slog.Logger
}

// RegisterFlags declares every option as a flag on fs (see pkg/config for the matching
// GENAILAB_DIFFUSION_* environment variables and YAML keys).
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.GRPC.Register(fs, DefaultGRPCAddr, "bearer token required from callers")
	fs.StringVar(&o.HTTPAddr, "http-addr", DefaultHTTPAddr, `listen address of the seed HTTP wrapper ("off" disables it)`)
	fs.StringVar(&o.HTTPAddrFile, "http-addr-file", "", "write the bound HTTP wrapper address to this file once listening")
	o.Metrics.Register(fs)
	fs.StringVar(&o.DataDir, "data-dir", DefaultDataDir, "data directory (model store under models/diffusion)")
	fs.Uint64Var(&o.MinFreeBytes, "min-free-bytes", 0, "free disk space a model download must leave (0: 5 % of the volume, at most 1 GiB)")
	fs.StringVar(&o.SDCLI, "sd-cli", "", "path of stable-diffusion.cpp's sd-cli (or sd); default: PATH")
	fs.StringVar(&o.SDServer, "sd-server", "", "path of stable-diffusion.cpp's sd-server; default: PATH")
	fs.BoolVar(&o.DemoEngines, "demo-engines", false, "use the built-in stable-diffusion.cpp stand-ins (synthetic images, marked as demo)")
	fs.StringVar(&o.DemoDir, "demo-dir", "", "directory of sd-cli-standin and sd-server-standin (demo mode); default: next to this executable, PATH, or this executable")
	fs.StringVar(&o.DefaultModel, "default-model", "", `model id a Start without one uses (default "demo" with -demo-engines)`)
	fs.StringVar(&o.DefaultMode, "mode", "cli", "engine mode of the default model: cli (one sd-cli per image) or server (a persistent sd-server)")
	fs.BoolVar(&o.Autostart, "autostart", false, "start the engine with the default model at boot")
	fs.Func("sd-extra-args", "extra stable-diffusion.cpp flags for sd-cli and sd-server, separated by spaces (no shell quoting), e.g. \"--diffusion-conv-direct\"", func(v string) error {
		o.EngineArgs = append(o.EngineArgs, strings.Fields(v)...)
		return nil
	})
	fs.StringVar(&o.TempDir, "temp-dir", "", "directory for per-image temporary files; default: the system's")
	fs.DurationVar(&o.StallTimeout, "stall-timeout", 5*time.Minute, "kill a generation that prints no progress for this long")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", 2*time.Minute, "how long sd-server may take to start")
}

// SetLogger sets the logger (cmdmain.Serve hands it over).
func (o *Options) SetLogger(log *slog.Logger) { o.Logger = log }

func (o Options) withDefaults() Options {
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DefaultModel == "" && o.DemoEngines {
		o.DefaultModel = DemoModelID
	}
	return o
}

// Validate checks the options that need no I/O.
func (o Options) Validate() error {
	if _, err := parseMode(o.DefaultMode); err != nil {
		return err
	}
	if o.Autostart && o.DefaultModel == "" && !o.DemoEngines {
		return errors.New("autostart needs a default model (-default-model)")
	}
	if o.DefaultModel != "" {
		if err := modelstore.ValidateID(o.DefaultModel); err != nil {
			return fmt.Errorf("default model: %w", err)
		}
	}
	return nil
}

// parseMode reads an engine mode name; "" is CLI mode.
func parseMode(s string) (diffusionv1.EngineMode, error) {
	switch strings.ToLower(s) {
	case "", "cli":
		return diffusionv1.EngineMode_ENGINE_MODE_CLI, nil
	case "server":
		return diffusionv1.EngineMode_ENGINE_MODE_SERVER, nil
	}
	return 0, fmt.Errorf("mode %q: want cli or server", s)
}
