// Command sd-cli-standin is a STAND-IN for stable-diffusion.cpp's sd-cli: same flags, same
// output, same exit codes, noise images, no model. See package internal/standin. It is the demo
// engine: the diffusion service runs it (found next to the service's executable, in -demo-dir,
// or on PATH) only with -demo-engines, and the production binary carries none of it.
//
//	sd-cli-standin --write-demo-model PATH   writes the small GGUF model the stand-ins accept
package main

import (
	"fmt"
	"os"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdcli"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--write-demo-model" {
		if err := sdmodel.WriteTestModel(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "sd-cli-standin:", err)
			os.Exit(1)
		}
		return
	}
	sdcli.Main()
}
