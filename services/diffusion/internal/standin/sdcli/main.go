package sdcli

import (
	"context"
	"os"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdsignal"
)

// Main runs the stand-in on the process's arguments and ends the process as the real sd-cli
// would: exit code, or death by SIGABRT / SIGSEGV. SIGTERM and SIGINT keep Go's default
// behaviour, which like the real program's is to die by the signal at once.
func Main() {
	o := Run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)
	if o.Signal != 0 {
		sdsignal.Die(o.Signal)
	}
	os.Exit(o.Code)
}
