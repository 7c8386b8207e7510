package cmdmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"testing"
)

func TestRunParsesFlagsThenRuns(t *testing.T) {
	var addr string
	var gotLog *slog.Logger
	c := Command{
		Name: "genailab-test", Service: "test", EnvPrefix: "GENAILAB_TEST_",
		Flags: func(fs *flag.FlagSet) { fs.StringVar(&addr, "grpc-addr", "127.0.0.1:1", "") },
		Run: func(ctx context.Context, log *slog.Logger) error {
			gotLog = log
			return ctx.Err()
		},
	}
	t.Setenv("GENAILAB_TEST_GRPC_ADDR", "127.0.0.1:2")
	if err := run(c, []string{"-log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1:2" || gotLog == nil || !gotLog.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatalf("addr %q, logger %v", addr, gotLog)
	}
}

func TestRunErrors(t *testing.T) {
	want := errors.New("boom")
	c := Command{Name: "x", Service: "x", EnvPrefix: "GENAILAB_X_", Run: func(context.Context, *slog.Logger) error { return want }}
	if err := run(c, nil); !errors.Is(err, want) {
		t.Fatalf("run error: %v", err)
	}
	if err := run(c, []string{"-log-level", "loud"}); err == nil {
		t.Fatal("a bad log level must fail")
	}
	if err := run(c, []string{"-nope"}); err == nil {
		t.Fatal("an unknown flag must fail")
	}
}

// Asking for help is no failure: the flag set prints the usage and the status is 0.
func TestHelpExitsZero(t *testing.T) {
	ran := false
	c := Command{Name: "x", Service: "x", EnvPrefix: "GENAILAB_X_", Run: func(context.Context, *slog.Logger) error { ran = true; return nil }}
	for _, arg := range []string{"-h", "-help", "--help"} {
		err := run(c, []string{arg})
		if !errors.Is(err, flag.ErrHelp) || ExitCode(err) != 0 {
			t.Errorf("%s: %v, exit code %d", arg, err, ExitCode(err))
		}
	}
	if ran {
		t.Error("help ran the command")
	}
	if ExitCode(nil) != 0 || ExitCode(errors.New("boom")) != 1 || ExitCode(fmt.Errorf("parse: %w", flag.ErrHelp)) != 0 {
		t.Error("exit codes: want 0 for nil and help, 1 for an error")
	}
}

type fakeOptions struct {
	Addr   string
	Logger *slog.Logger
}

func (o *fakeOptions) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "grpc-addr", "127.0.0.1:1", "")
}
func (o *fakeOptions) SetLogger(log *slog.Logger) { o.Logger = log }

// Serve's command is named after the binary, reads GENAILAB_<SERVICE>_* and hands run the
// parsed options with the logger.
func TestServiceCommand(t *testing.T) {
	var got fakeOptions
	c := serviceCommand("genailab-fake", func(_ context.Context, o fakeOptions) error { got = o; return nil })
	if c.Name != "genailab-fake" || c.Service != "fake" || c.EnvPrefix != "GENAILAB_FAKE_" {
		t.Fatalf("%+v", c)
	}
	t.Setenv("GENAILAB_FAKE_GRPC_ADDR", "127.0.0.1:2")
	if err := run(c, nil); err != nil {
		t.Fatal(err)
	}
	if got.Addr != "127.0.0.1:2" || got.Logger == nil {
		t.Fatalf("run got %+v", got)
	}
}
