// Package llamabin finds the llama-server executable and prepares the environment it runs in.
//
// Resolution order (what every service and test uses): a configured path, then the GENAILAB_LLAMA_SERVER
// environment variable, then llama-server on PATH, then the project's engine install
// <repo>/.engines/llama/bin/llama-server (written by scripts/install-llama-server.sh), searched from the
// working directory upwards.
package llamabin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/genailab/genailab/pkg/execfile"
)

const (
	// EnvVar names an explicit llama-server executable.
	EnvVar = "GENAILAB_LLAMA_SERVER"
	// Name is the executable looked up on PATH.
	Name = "llama-server"
	// EngineRelPath is where scripts/install-llama-server.sh puts the executable, relative to the repo root.
	EngineRelPath = ".engines/llama/bin/llama-server"
)

// ErrNotFound means no llama-server was found by any rule.
var ErrNotFound = errors.New("llama-server not found (set " + EnvVar + ", put llama-server on PATH, or run scripts/install-llama-server.sh)")

// Source says which rule found the executable.
type Source string

// Sources, in resolution order.
const (
	SourceConfig  Source = "config"
	SourceEnv     Source = "env"
	SourcePath    Source = "path"
	SourceEngines Source = "engines"
)

// Lookup holds the inputs of a resolution; zero fields mean the process's own (os.Getenv, $PATH lookup,
// working directory).
type Lookup struct {
	Configured string                       // path from the service configuration
	Getenv     func(string) string          // environment lookup
	LookPath   func(string) (string, error) // PATH lookup
	From       string                       // directory the engine-dir search starts from
}

// Found is a resolved executable.
type Found struct {
	Path   string // absolute path
	Source Source
}

// Resolve resolves with the process's environment and working directory.
func Resolve(configured string) (Found, error) {
	return Lookup{Configured: configured}.Find()
}

// Find applies the resolution order. A configured or environment path that is not an executable file is
// an error (not a reason to fall through), so a typo never silently runs some other binary.
func (l Lookup) Find() (Found, error) {
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	lookPath := l.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if l.Configured != "" {
		p, err := execfile.Check(l.Configured)
		if err != nil {
			return Found{}, fmt.Errorf("configured llama-server: %w", err)
		}
		return Found{p, SourceConfig}, nil
	}
	if v := getenv(EnvVar); v != "" {
		p, err := execfile.Check(v)
		if err != nil {
			return Found{}, fmt.Errorf("%s: %w", EnvVar, err)
		}
		return Found{p, SourceEnv}, nil
	}
	if p, err := lookPath(Name); err == nil {
		if p, err := execfile.Check(p); err == nil {
			return Found{p, SourcePath}, nil
		}
	}
	from := l.From
	if from == "" {
		wd, err := os.Getwd()
		if err != nil {
			return Found{}, fmt.Errorf("find llama-server: %w", err)
		}
		from = wd
	}
	if p, ok := FindEngine(from); ok {
		return Found{p, SourceEngines}, nil
	}
	return Found{}, ErrNotFound
}

// FindEngine looks for EngineRelPath in dir and its ancestors.
func FindEngine(dir string) (string, bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for {
		if p, err := execfile.Check(filepath.Join(dir, EngineRelPath)); err == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
