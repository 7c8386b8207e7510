package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

func (a *App) hostsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hosts", Aliases: []string{"host"}, Short: "The GPU hosts the orchestrator places images on: list, drain, undrain"}
	cmd.AddCommand(
		callCmd(a, "list", "List the hosts with their state, free memory, engines and jobs", noArgs, genailab.ServiceOrchestrator,
			func(ctx context.Context, c *genailab.Client, _ []string) (*orchestratorv1.ListHostsResponse, error) {
				return c.Orchestrator().ListHosts(ctx, &orchestratorv1.ListHostsRequest{})
			}, a.printHosts),
		hostStateCmd(a, "drain", "Stop placing new images on a host: its running image finishes, queued ones go elsewhere",
			func(ctx context.Context, c *genailab.Client, name string) (*orchestratorv1.DrainHostResponse, error) {
				return c.Orchestrator().DrainHost(ctx, &orchestratorv1.DrainHostRequest{Name: name})
			}),
		hostStateCmd(a, "undrain", "Let a drained host take images again",
			func(ctx context.Context, c *genailab.Client, name string) (*orchestratorv1.UndrainHostResponse, error) {
				return c.Orchestrator().UndrainHost(ctx, &orchestratorv1.UndrainHostRequest{Name: name})
			}))
	return cmd
}

// printHosts is the table of hosts.
func (a *App) printHosts(resp *orchestratorv1.ListHostsResponse) error {
	if len(resp.GetHosts()) == 0 {
		_, err := fmt.Fprintln(a.Stdout, "No hosts.")
		return err
	}
	w := a.table()
	fmt.Fprintln(w, "HOST\tSTATE\tGPUS\tFREE\tLLM\tDIFFUSION\tRUNNING\tQUEUED\tTELEMETRY")
	for _, h := range resp.GetHosts() {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", termui.SanitizeLine(h.GetName()), hostState(h), len(h.GetGpus()),
			termui.Bytes(h.GetFreeBytes()), hostLLM(h), modelOf(h.GetDiffusionModel()), h.GetRunningJobs(), h.GetQueuedJobs(), when(h.GetTelemetryAt()))
	}
	return w.Flush()
}

// hostState is a host's state, with the reason when it is not ready.
func hostState(h *orchestratorv1.Host) string {
	s := enumName(h.GetState().String(), "HOST_STATE_")
	if r := h.GetStateReason(); r != "" && h.GetState() != orchestratorv1.HostState_HOST_STATE_READY {
		s += " (" + termui.Fit(oneLine(r), 40) + ")"
	}
	return s
}

// hostLLM is what a host's LLM runs: its model, or why it does not.
func hostLLM(h *orchestratorv1.Host) string {
	switch {
	case h.GetLlmOffloaded():
		return "offloaded"
	case h.GetLlmRunning():
		return modelOf(h.GetLlmModel())
	}
	return "stopped"
}

// hostStateCmd is a command that changes one host's state (drain, undrain) and shows it after the change.
func hostStateCmd[R interface {
	proto.Message
	GetHost() *orchestratorv1.Host
}](a *App, use, short string, rpc func(context.Context, *genailab.Client, string) (R, error)) *cobra.Command {
	cmd := callCmd(a, use+" HOST", short, exactArgs(1), genailab.ServiceOrchestrator,
		func(ctx context.Context, c *genailab.Client, args []string) (R, error) { return rpc(ctx, c, args[0]) },
		func(resp R) error {
			h := resp.GetHost()
			_, err := fmt.Fprintf(a.Stdout, "Host %s: %s.\n", termui.SanitizeLine(h.GetName()), hostState(h))
			return err
		})
	cmd.ValidArgsFunction = a.completeHosts
	return cmd
}

// completeHosts completes host names (the first argument).
func (a *App) completeHosts(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.complete(cmd, func(ctx context.Context, c *genailab.Client) ([]string, error) {
		resp, err := c.Orchestrator().ListHosts(ctx, &orchestratorv1.ListHostsRequest{})
		if err != nil {
			return nil, err
		}
		var names []string
		for _, h := range resp.GetHosts() {
			names = append(names, h.GetName()+"\t"+hostState(h))
		}
		return names, nil
	})
}
