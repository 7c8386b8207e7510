package sdflags

import (
	"fmt"
	"io"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdgen"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
)

// Program is a stand-in binary: its name (argv[0] when argv is empty), its option table and
// its usage text for a given argv[0].
type Program struct {
	Name  string
	Table func() *sdargs.Table
	Help  func(argv0 string) string
}

// Started is what a stand-in has once its command line is parsed.
type Started struct {
	Config sdgen.Config
	Log    *sdlog.Logger
	Args   *sdargs.Args
	Help   string // the usage text, for Check
}

// Start is the start-up the sd-cli and sd-server stand-ins share: the configuration from the
// environment, the logger (with --verbose and --color applied) and the parse of argv (argv[0]
// first). When the process must end now (a bad environment: code 2; help, version or a bad
// command line: as Parse says), it returns that outcome instead.
func (p Program) Start(argv []string, getenv func(string) string, stdout, stderr io.Writer) (*Started, *Outcome) {
	cfg, err := sdgen.FromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s stand-in: %v\n", p.Name, err)
		return nil, &Outcome{Code: 2}
	}
	if len(argv) == 0 {
		argv = []string{p.Name}
	}
	log := &sdlog.Logger{Out: stdout, Err: stderr}
	help := p.Help(argv[0])
	args, end := Parse(p.Table(), argv, log, help)
	if end != nil {
		return nil, end
	}
	log.Verbose, log.Color = args.Has("--verbose"), args.Has("--color")
	return &Started{Config: cfg, Log: log, Args: args, Help: help}, nil
}
