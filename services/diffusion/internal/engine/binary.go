package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/genailab/genailab/pkg/execfile"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
)

// Binaries says where the engine executables are.
type Binaries struct {
	// CLI and Server are configured paths of sd-cli (or sd) and sd-server; empty means look
	// on PATH.
	CLI, Server string
	// Demo uses the stand-ins instead of stable-diffusion.cpp: sd-cli-standin and
	// sd-server-standin from DemoDir, else from the directory of the running executable, else
	// from PATH. Their images are synthetic, and everything reports demo.
	Demo    bool
	DemoDir string
	// LookPath defaults to exec.LookPath.
	LookPath func(string) (string, error)
}

// Binary is a resolved executable.
type Binary struct {
	Path string
	Demo bool
	// Env is added to the process's environment (the self-hosted stand-in's selector).
	Env []string
}

// Hints name the configuration knobs in errors (the service's flags and environment
// variables).
type Hints struct {
	CLI, Server, Demo string
}

// DefaultHints are the diffusion service's flag names.
var DefaultHints = Hints{
	CLI:    "-sd-cli (env GENAILAB_DIFFUSION_SD_CLI)",
	Server: "-sd-server (env GENAILAB_DIFFUSION_SD_SERVER)",
	Demo:   "-demo-engines (env GENAILAB_DIFFUSION_DEMO_ENGINES=true)",
}

// Resolve finds the executable for mode: the configured path, then PATH (sd-cli, then sd;
// sd-server), or the stand-in in demo mode. Errors wrap enginerr.ErrNoEngine and say how to
// configure one.
func (b Binaries) Resolve(mode Mode, hints Hints) (Binary, error) {
	look := b.LookPath
	if look == nil {
		look = exec.LookPath
	}
	configured, names, flag, standin := b.CLI, []string{"sd-cli", "sd"}, hints.CLI, "sd-cli-standin"
	if mode == ModeServer {
		configured, names, flag, standin = b.Server, []string{"sd-server"}, hints.Server, "sd-server-standin"
	}
	if b.Demo {
		return b.resolveDemo(standin, look, hints)
	}
	if configured != "" {
		p, err := execfile.Check(configured)
		if err != nil {
			return Binary{}, fmt.Errorf("%w: configured %s %q: %v", enginerr.ErrNoEngine, names[0], configured, err)
		}
		return Binary{Path: p}, nil
	}
	for _, n := range names {
		if p, err := look(n); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
			return Binary{Path: p}, nil
		}
	}
	return Binary{}, fmt.Errorf("%w: no %s found on PATH; install stable-diffusion.cpp and set %s to its %s binary (or put it on PATH), or start the service with %s to use the built-in stand-in (synthetic images)",
		enginerr.ErrNoEngine, names[0], flag, names[0], hints.Demo)
}

func (b Binaries) resolveDemo(name string, look func(string) (string, error), hints Hints) (Binary, error) {
	var dirs []string
	if b.DemoDir != "" {
		dirs = append(dirs, b.DemoDir)
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	for _, d := range dirs {
		if p, err := execfile.Check(filepath.Join(d, name)); err == nil {
			return Binary{Path: p, Demo: true}, nil
		}
	}
	if p, err := look(name); err == nil {
		return Binary{Path: p, Demo: true}, nil
	}
	return Binary{}, fmt.Errorf("%w: demo mode (%s) needs the demo engine %s: `make build` puts it in bin/ next to the service (or build it with `go build -o bin/ ./services/diffusion/cmd/%s`; -demo-dir or PATH work too)",
		enginerr.ErrNoEngine, hints.Demo, name, name)
}

// DemoCLI returns the demo sd-cli stand-in's path (demo mode only).
func (e *Engine) DemoCLI() (string, error) {
	if !e.opts.Binaries.Demo {
		return "", errors.New("not in demo mode")
	}
	b, err := e.opts.Binaries.Resolve(ModeCLI, e.opts.Hints)
	if err != nil {
		return "", err
	}
	return b.Path, nil
}
