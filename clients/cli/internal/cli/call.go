package cli

import (
	"context"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	genailab "github.com/genailab/genailab/clients/go"
)

// call is the skeleton of a command that makes one call to a service: dial, call, then
// print the answer, as protojson with --json and with show otherwise. A failed call says
// which service it went to (see at). rpc may do more than the one call (follow a job, save
// an image): its errors are reported the same way.
func call[R proto.Message](a *App, cmd *cobra.Command, svc genailab.Service,
	rpc func(context.Context, *genailab.Client) (R, error), show func(R) error) error {
	c, err := a.dial(cmd)
	if err != nil {
		return err
	}
	resp, err := rpc(cmd.Context(), c)
	if err != nil {
		return a.at(svc, err)
	}
	return printAnswer(a, resp, show)
}

// printAnswer prints a command's answer: protojson with --json, show otherwise.
func printAnswer[R proto.Message](a *App, resp R, show func(R) error) error {
	if a.g.json {
		return a.printJSON(resp)
	}
	return show(resp)
}

// callCmd is a command that makes one call (see call): use, short and args are cobra's, and
// rpc gets the command's arguments. Flags, aliases and completion are added to what it returns.
func callCmd[R proto.Message](a *App, use, short string, args cobra.PositionalArgs, svc genailab.Service,
	rpc func(context.Context, *genailab.Client, []string) (R, error), show func(R) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: run(func(cmd *cobra.Command, argv []string) error {
		return call(a, cmd, svc, func(ctx context.Context, c *genailab.Client) (R, error) { return rpc(ctx, c, argv) }, show)
	})}
}
