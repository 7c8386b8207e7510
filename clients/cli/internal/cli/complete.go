package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	genailab "github.com/genailab/genailab/clients/go"
)

// complete gives shell completion the candidates ("id\tdescription") that list finds
// with a client to the services and 3 s to answer; a failure offers none.
func (a *App) complete(cmd *cobra.Command, list func(context.Context, *genailab.Client) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	c, err := a.dial(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	ids, err := list(ctx, c)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}
