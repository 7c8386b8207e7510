package cmdmaintest_test

import (
	"context"
	"flag"
	"log/slog"
	"testing"

	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/cmdmain/cmdmaintest"
)

// A command built on cmdmain.Main answers -h and --help with its usage and status 0.
func TestHelpExitsZero(t *testing.T) {
	cmdmaintest.HelpExitsZero(t, func() {
		cmdmain.Main(cmdmain.Command{
			Name: "genailab-fake", Service: "fake", EnvPrefix: "GENAILAB_FAKE_",
			Flags: func(fs *flag.FlagSet) { fs.String("grpc-addr", "127.0.0.1:0", "gRPC listen address") },
			Run:   func(context.Context, *slog.Logger) error { panic("help must not run the command") },
		})
	}, "-grpc-addr")
}
