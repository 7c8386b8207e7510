// Command genailab runs genailab's single-host stack: `genailab up` starts the LLM,
// diffusion and monitor services, the orchestrator and the REST gateway as separate
// supervised processes and stops them all on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/config"
	"github.com/genailab/genailab/pkg/logging"
	"github.com/genailab/genailab/stack/internal/stack"
)

const usage = `usage: genailab up [flags]

Starts the whole single-host stack on loopback: LLM (gRPC 50051), diffusion
(gRPC 50052, seed HTTP 8081), monitor (gRPC 50053), orchestrator (gRPC 50054)
and the REST gateway (HTTP 8080). Run "genailab up -h" for the flags.
`

func main() {
	if len(os.Args) == 2 && isHelp(os.Args[1]) {
		fmt.Fprint(os.Stdout, usage)
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "up" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmdmain.Exit("genailab", up(os.Args[2:]))
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "genailab")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "genailab")
	}
	return ".genailab"
}

func up(args []string) error {
	fs := flag.NewFlagSet("genailab up", flag.ContinueOnError)
	var o stack.Options
	fs.StringVar(&o.DataDir, "data-dir", defaultDataDir(), "data directory (models, logs, state)")
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory of the service binaries (default: next to genailab, then PATH)")
	fs.StringVar(&o.GatewayAddr, "gateway-addr", "", "REST gateway address (default 127.0.0.1:8080, or a free port with -ephemeral-ports)")
	fs.StringVar(&o.LlamaServer, "llama-server", "", "llama-server executable (default: PATH, then the project's .engines)")
	fs.StringVar(&o.LLMModel, "llm-model", "", "LLM model id to start at boot (default: the generated tiny test model)")
	noTiny := fs.Bool("no-tiny-model", false, "do not install and start the generated tiny test model")
	fs.BoolVar(&o.DemoEngines, "demo-engines", false, "use the built-in stable-diffusion.cpp stand-in (synthetic images, marked as demo) even when a real one is found")
	sdCLI := fs.String("sd-cli", "", "stable-diffusion.cpp's sd-cli (default: PATH, then "+stack.SDCPPRelDir+" from the working directory up)")
	sdServer := fs.String("sd-server", "", "stable-diffusion.cpp's sd-server (default: beside sd-cli, PATH, then "+stack.SDCPPRelDir+")")
	diffModel := fs.String("diffusion-model", "", "diffusion model id of the store to run (default: the one -diffusion-model-file imports, else the newest in the store)")
	diffFile := fs.String("diffusion-model-file", "", "a diffusion model file (.gguf, .safetensors) to import into the store and run")
	fs.StringVar(&o.DiffusionMode, "diffusion-mode", "cli", "diffusion engine mode: cli (one sd-cli per image) or server (a persistent sd-server, the model kept loaded)")
	fs.BoolVar(&o.Ephemeral, "ephemeral-ports", false, "start every service on a free port")
	auth.TokenFlags(fs, &o.Token, "token", "bearer token for every service and the gateway")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := config.Parse(fs, args, "GENAILAB_"); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "genailab", *level, "text")
	if err != nil {
		return err
	}
	o.Logger, o.LogOutput = log, os.Stderr
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.LLMModel == "" && !*noTiny {
		if o.LLMModel, err = stack.EnsureTinyModel(ctx, o.DataDir); err != nil {
			return err
		}
		log.Info("LLM: the generated tiny random-weight test model (chat works, replies are random text); choose another with -llm-model", "model", o.LLMModel)
	}
	if o.Diffusion, err = chooseDiffusion(ctx, o, *sdCLI, *sdServer, *diffModel, *diffFile); err != nil {
		return err
	}
	log.Info(o.Diffusion.Sentence)
	return stack.Run(ctx, o, os.Stdout)
}

// chooseDiffusion gathers what the image engine needs (a real stable-diffusion.cpp, a model)
// and lets stack.ChooseDiffusion decide.
func chooseDiffusion(ctx context.Context, o stack.Options, cli, server, model, file string) (stack.DiffusionChoice, error) {
	f := stack.DiffusionFacts{ForceDemo: o.DemoEngines}
	if !o.DemoEngines || cli != "" || server != "" {
		wd, err := os.Getwd()
		if err != nil {
			return stack.DiffusionChoice{}, err
		}
		if f.SDCLI, f.SDServer, f.Source, err = stack.FindSDCPP(cli, server, wd); err != nil {
			return stack.DiffusionChoice{}, err
		}
	}
	if f.SDCLI != "" || model != "" || file != "" {
		var err error
		if f.Model, f.ModelSource, err = stack.EnsureDiffusionModel(ctx, o.DataDir, model, file); err != nil {
			return stack.DiffusionChoice{}, err
		}
	}
	if f.SDCLI == "" && (model != "" || file != "") && !o.DemoEngines {
		return stack.DiffusionChoice{}, fmt.Errorf("a diffusion model was given but no stable-diffusion.cpp was found: give -sd-cli (and -sd-server), put them on PATH or in %s", stack.SDCPPRelDir)
	}
	if o.DiffusionMode == "server" && f.SDCLI != "" && f.SDServer == "" && !o.DemoEngines {
		return stack.DiffusionChoice{}, errors.New("-diffusion-mode server needs sd-server: give -sd-server")
	}
	return stack.ChooseDiffusion(f), nil
}
