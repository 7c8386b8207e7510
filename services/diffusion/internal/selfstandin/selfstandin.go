// Package selfstandin lets the diffusion service's own executable act as the sd.cpp
// STAND-INS (package standin: synthetic images, not stable-diffusion.cpp) in demo mode, so
// a demo needs no separately built stand-in binaries.
package selfstandin

import (
	"fmt"
	"os"

	"github.com/genailab/genailab/services/diffusion/internal/engine"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdcli"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdserver"
)

// RunIfAsked runs the stand-in named by the engine.StandinEnv environment variable and exits;
// without it, it returns at once. Call it first thing in main.
func RunIfAsked() {
	switch role := os.Getenv(engine.StandinEnv); role {
	case "":
		return
	case "sd-cli":
		sdcli.Main()
		os.Exit(0)
	case "sd-server":
		sdserver.Main()
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: this build has no such stand-in\n", engine.StandinEnv, role)
		os.Exit(1)
	}
}
