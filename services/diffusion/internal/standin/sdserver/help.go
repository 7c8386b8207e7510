// Package sdserver is the STAND-IN for stable-diffusion.cpp's `sd-server` (see package
// standin): the same flags, start-up output and exit codes, and the same HTTP API as the
// reference captures show (native async jobs under /sdcpp/v1, the OpenAI-style synchronous
// /v1/images/generations, the A1111-style /sdapi/v1), with a worker that prints the same log
// lines and progress bars while it "generates" noise images. It runs no model.
package sdserver

import (
	_ "embed"
	"strings"
	"sync"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdargs"
)

// helpText is the captured `sd-server --help` output (reference data).
//
//go:embed help.txt
var helpText string

// Help returns the help text with argv0 in the Usage line.
func Help(argv0 string) string {
	return strings.Replace(helpText, "Usage: sd-server [options]", "Usage: "+argv0+" [options]", 1)
}

var table = sync.OnceValue(func() *sdargs.Table {
	t, err := sdargs.ParseHelp(helpText)
	if err != nil {
		panic("sd-server stand-in: embedded help: " + err.Error())
	}
	return t
})

// Captured response bodies that do not depend on the model (reference data).
var (
	//go:embed data/capabilities.json
	capabilitiesJSON string
	//go:embed data/samplers.json
	samplersJSON string
	//go:embed data/schedulers.json
	schedulersJSON string
	//go:embed data/upscalers.json
	upscalersJSON string
)
