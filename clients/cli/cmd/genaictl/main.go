// Command genaictl is genailab's command line: models, the LLM and diffusion engines,
// image generation with live progress, jobs, resources and events, over the services'
// gRPC APIs. Run "genaictl --help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/genailab/genailab/clients/cli/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &cli.App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		TTY: term.IsTerminal(int(os.Stdout.Fd())), StdinTTY: term.IsTerminal(int(os.Stdin.Fd()))}
	if app.TTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			app.Width = w
		}
	}
	code := app.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
