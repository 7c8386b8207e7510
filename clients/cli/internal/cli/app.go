// Package cli is genaictl, genailab's command line: a thin client of the services' gRPC
// APIs (through clients/go) in the style of docker, kubectl and ollama.
//
// Where the services are: --addr names the orchestrator ("host" or "host:port"); the
// LLM, diffusion and monitor services are on the same host at their default ports
// (50051, 50052, 50053) unless --llm-addr, --diffusion-addr or --monitor-addr say
// otherwise. Every connection flag also reads an environment variable when it is not
// given: GENAILAB_ADDR, GENAILAB_LLM_ADDR, GENAILAB_DIFFUSION_ADDR, GENAILAB_MONITOR_ADDR,
// GENAILAB_TOKEN, GENAILAB_TLS_CA, GENAILAB_TLS_CLIENT_CERT, GENAILAB_TLS_CLIENT_KEY,
// GENAILAB_TLS_SERVER_NAME.
//
// Output: tables and progress bars for people; plain lines (no escape sequences, no
// redrawing) when stdout is not a terminal; protojson with --json (one indented
// document for a single answer, one compact document per line for a stream).
//
// Exit codes: 0 success, 1 failure (one line on stderr: "genaictl: <message>", the
// gRPC status message when a service refused), 2 bad usage, 130 interrupted (Ctrl-C;
// a generation or download in progress is cancelled on the server first).
package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
)

// App is one run of genaictl.
type App struct {
	// Stdin, Stdout and Stderr are the process's streams.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment.
	Getenv func(string) string
	// TTY says whether Stdout is a terminal, Width its columns; StdinTTY whether Stdin is.
	TTY      bool
	Width    int
	StdinTTY bool

	g      globals
	client *genailab.Client
}

// globals are the flags every command takes.
type globals struct {
	addr, llmAddr, diffusionAddr, monitorAddr string
	token                                     string
	tlsCA, tlsCert, tlsKey, tlsServerName     string
	insecure                                  bool
	json                                      bool
}

// connFlags are the flags that fall back to GENAILAB_<NAME> environment variables.
var connFlags = []string{"addr", "llm-addr", "diffusion-addr", "monitor-addr", "token", "tls-ca", "tls-client-cert", "tls-client-key", "tls-server-name"}

// Exit codes.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// runError marks an error returned by a command's own work (not a usage error).
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// run adapts a command function so that its errors are told apart from usage errors.
func run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return runError{err}
		}
		return nil
	}
}

// Run executes genaictl with args (without the program name) and returns the exit code.
// ctx is cancelled on Ctrl-C.
func (a *App) Run(ctx context.Context, args []string) int {
	if a.Getenv == nil {
		a.Getenv = os.Getenv
	}
	if a.Width <= 0 {
		a.Width = 80
	}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	err := root.ExecuteContext(ctx)
	if a.client != nil {
		a.client.Close()
	}
	if err == nil {
		return ExitOK
	}
	var re runError
	interrupted := ctx.Err() != nil
	io.WriteString(a.Stderr, "genaictl: "+a.message(err)+"\n")
	switch {
	case interrupted:
		return ExitInterrupted
	case errors.As(err, &re):
		return ExitFailure
	default:
		io.WriteString(a.Stderr, "Run 'genaictl --help' for usage.\n")
		return ExitUsage
	}
}

func (a *App) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "genaictl",
		Short: "Control genailab: models, the LLM and diffusion engines, image generation, resources",
		Long: `genaictl controls a genailab host: its models, the LLM server (llama.cpp), the
diffusion engine (stable-diffusion.cpp), image generation through the orchestrator
(which offloads the LLM when an image needs its memory), resources and events.

--addr names the orchestrator (host or host:port, default 127.0.0.1:50054); the LLM,
diffusion and monitor services are on the same host at ports 50051, 50052 and 50053
unless --llm-addr, --diffusion-addr or --monitor-addr say otherwise. Each connection
flag falls back to an environment variable: GENAILAB_ADDR, GENAILAB_TOKEN, ...`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.g.addr, "addr", "", "orchestrator address, host or host:port (default 127.0.0.1:50054; env GENAILAB_ADDR)")
	f.StringVar(&a.g.llmAddr, "llm-addr", "", "LLM service address (default: --addr's host, port 50051)")
	f.StringVar(&a.g.diffusionAddr, "diffusion-addr", "", "diffusion service address (default: --addr's host, port 50052)")
	f.StringVar(&a.g.monitorAddr, "monitor-addr", "", "monitor service address (default: --addr's host, port 50053)")
	f.StringVar(&a.g.token, "token", "", "bearer token of the services (env GENAILAB_TOKEN)")
	f.StringVar(&a.g.tlsCA, "tls-ca", "", "PEM CA certificate(s) of the services; set, connections use TLS")
	f.StringVar(&a.g.tlsCert, "tls-client-cert", "", "PEM client certificate (mutual TLS)")
	f.StringVar(&a.g.tlsKey, "tls-client-key", "", "PEM key of --tls-client-cert")
	f.StringVar(&a.g.tlsServerName, "tls-server-name", "", "name expected in the services' certificates (default: the host dialled)")
	f.BoolVar(&a.g.insecure, "insecure", false, "allow sending the token without TLS to a host that is not loopback")
	f.BoolVar(&a.g.json, "json", false, "print protojson (streams: one document per line)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(a.systemCmd(), a.modelsCmd(), a.llmCmd(), a.diffusionCmd(), a.generateCmd(), a.editCmd(), a.jobsCmd(),
		a.resourcesCmd(), a.eventsCmd(), a.hostsCmd(), a.orchestratorCmd())
	return root
}

// dial returns the client, creating it on first use from the flags and environment.
func (a *App) dial(cmd *cobra.Command) (*genailab.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	flags := cmd.Root().PersistentFlags()
	for _, name := range connFlags {
		fl := flags.Lookup(name)
		if fl == nil || fl.Changed {
			continue
		}
		env := "GENAILAB_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := a.Getenv(env); v != "" {
			if err := fl.Value.Set(v); err != nil {
				return nil, err
			}
		}
	}
	c, err := genailab.Dial(genailab.Options{
		Addr: a.g.addr, LLMAddr: a.g.llmAddr, DiffusionAddr: a.g.diffusionAddr, MonitorAddr: a.g.monitorAddr,
		Token: a.g.token, CAFile: a.g.tlsCA, CertFile: a.g.tlsCert, KeyFile: a.g.tlsKey, ServerName: a.g.tlsServerName,
		Insecure: a.g.insecure,
	})
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

// live is a redrawing region on stdout (plain lines when it is not a terminal).
func (a *App) live() *termui.Live { return termui.NewLive(a.Stdout, a.TTY && !a.g.json, a.Width) }

// noArgs, exactArgs and friends keep cobra's argument checks as usage errors.
var (
	noArgs    = cobra.NoArgs
	exactArgs = cobra.ExactArgs
)

// changed reports whether a flag was given.
func changed(fs *pflag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Changed
}
