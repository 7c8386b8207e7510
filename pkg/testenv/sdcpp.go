package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/execfile"
)

// SDCPP is a real stable-diffusion.cpp build.
type SDCPP struct {
	Dir    string // the directory holding both programs
	CLI    string // sd-cli
	Server string // sd-server
}

// FindSDCPP finds the real stable-diffusion.cpp: the directory named by GENAILAB_SDCPP_DIR, else
// ../shared/engines/sdcpp/bin beside the repository. A configured directory that lacks a program is
// an error (never a fall-through to another build); nothing found at all is ErrMissing.
func FindSDCPP() (SDCPP, error) {
	if dir := os.Getenv(SDCPPDirEnv); dir != "" {
		s, err := sdcppIn(dir)
		if err != nil {
			return SDCPP{}, fmt.Errorf("%s=%s: %w", SDCPPDirEnv, dir, err)
		}
		return s, nil
	}
	shared, err := SharedDir()
	if err != nil {
		return SDCPP{}, fmt.Errorf("%w: no stable-diffusion.cpp (set %s to a directory with sd-cli and sd-server)", err, SDCPPDirEnv)
	}
	dir := filepath.Join(shared, "engines", "sdcpp", "bin")
	if _, err := os.Stat(dir); err != nil {
		return SDCPP{}, fmt.Errorf("%w: no stable-diffusion.cpp at %s (set %s to a directory with sd-cli and sd-server)", ErrMissing, dir, SDCPPDirEnv)
	}
	return sdcppIn(dir)
}

func sdcppIn(dir string) (SDCPP, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return SDCPP{}, err
	}
	s := SDCPP{Dir: abs, CLI: filepath.Join(abs, "sd-cli"), Server: filepath.Join(abs, "sd-server")}
	for _, p := range []string{s.CLI, s.Server} {
		if _, err := execfile.Check(p); err != nil {
			return SDCPP{}, fmt.Errorf("stable-diffusion.cpp: %w", err)
		}
	}
	return s, nil
}

// RealSD is what a real-engine image test needs: the programs and the tiny model they load.
type RealSD struct {
	SDCPP
	Model string // the tiny random-weight model (TinySDModel)
}

// FindRealSD finds both, for TestMain.
func FindRealSD() (RealSD, error) {
	s, err := FindSDCPP()
	if err != nil {
		return RealSD{}, err
	}
	m, err := TinySDModel()
	if err != nil {
		return RealSD{}, err
	}
	return RealSD{SDCPP: s, Model: m}, nil
}

// RequireRealSD returns the real stable-diffusion.cpp and the tiny model, or skips t (fails it
// under GENAILAB_REQUIRE_SDCPP=1).
func RequireRealSD(t testing.TB) RealSD {
	t.Helper()
	r, err := FindRealSD()
	Need(t, RequireSDCPPEnv, err)
	return r
}
