// Package sdcli is the STAND-IN for stable-diffusion.cpp's `sd-cli` (see package standin): it
// parses the real program's flags, prints what the real program prints, byte for byte where the
// reference captures show it, exits with the same codes and signals, and writes a real PNG of
// deterministic noise. It runs no model.
package sdcli

import (
	_ "embed"
	"strings"
	"sync"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdflags"
)

// helpText is the captured `sd-cli --help` output (reference data), printed with argv[0] in
// the Usage line as the real program does.
//
//go:embed help.txt
var helpText string

// VersionLine is what `sd-cli --version` prints.
const VersionLine = sdflags.VersionLine

// Help returns the help text with argv0 in the Usage line.
func Help(argv0 string) string {
	return strings.Replace(helpText, "Usage: sd-cli [options]", "Usage: "+argv0+" [options]", 1)
}

var table = sync.OnceValue(func() *sdargs.Table {
	t, err := sdargs.ParseHelp(helpText)
	if err != nil {
		panic("sd-cli stand-in: embedded help: " + err.Error())
	}
	return t
})
