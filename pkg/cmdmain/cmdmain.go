// Package cmdmain is the frame every genailab service command shares: the -log-level and
// -log-format flags, options from flags, GENAILAB_* environment and a YAML file (pkg/config),
// a context cancelled by SIGINT or SIGTERM, and one "name: error" line with exit status 1
// on failure. Help (-h, -help, --help) prints the usage and exits 0: asking is no failure.
package cmdmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/genailab/genailab/pkg/config"
	"github.com/genailab/genailab/pkg/logging"
)

// Command describes one service command.
type Command struct {
	// Name is the binary's name ("genailab-llm"); Service the short name used in logs ("llm").
	Name, Service string
	// EnvPrefix is the environment prefix of its options ("GENAILAB_LLM_").
	EnvPrefix string
	// Flags registers the command's own flags.
	Flags func(fs *flag.FlagSet)
	// Run runs the service until ctx ends; it is called after the flags are parsed.
	Run func(ctx context.Context, log *slog.Logger) error
}

// Options is what Serve needs of a service's options O, through a pointer: they declare
// their own flags and take the logger.
type Options[O any] interface {
	*O
	RegisterFlags(fs *flag.FlagSet)
	SetLogger(log *slog.Logger)
}

// Serve is Main for the service named name ("genailab-llm": logs say "llm", the environment
// prefix is GENAILAB_LLM_): its options register their flags, are filled from the command
// line, the environment and the YAML file, take the logger, and run serves with them.
func Serve[O any, P Options[O]](name string, run func(context.Context, O) error) {
	Main(serviceCommand[O, P](name, run))
}

func serviceCommand[O any, P Options[O]](name string, run func(context.Context, O) error) Command {
	var o O
	service := strings.TrimPrefix(name, "genailab-")
	return Command{
		Name: name, Service: service, EnvPrefix: "GENAILAB_" + strings.ToUpper(service) + "_",
		Flags: P(&o).RegisterFlags,
		Run: func(ctx context.Context, log *slog.Logger) error {
			P(&o).SetLogger(log)
			return run(ctx, o)
		},
	}
}

// Main parses the command line and runs c, then exits (Exit).
func Main(c Command) {
	Exit(c.Name, run(c, os.Args[1:]))
}

// Exit ends a command whose run returned err: status 0 for nil and for flag.ErrHelp (the flag
// set has printed the usage), else "name: err" on stderr and status 1. Every genailab command
// ends through it, so none reports "flag: help requested" as an error.
func Exit(name string, err error) {
	code := ExitCode(err)
	if code != 0 {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(code)
}

// ExitCode is Exit's status for err.
func ExitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

func run(c Command, args []string) error {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	if c.Flags != nil {
		c.Flags(fs)
	}
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := config.Parse(fs, args, c.EnvPrefix); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, c.Service, *level, *format)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.Run(ctx, log)
}
