package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

func (a *App) orchestratorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "orchestrator", Aliases: []string{"orch"}, Short: "The orchestrator's offload decisions and the LLM state it saved"}
	cmd.AddCommand(a.savedStateCmd(), a.wouldNeedOffloadCmd())
	return cmd
}

// hostFlag is the --host flag of the commands about one host, completed with the hosts' names.
func (a *App) hostFlag(cmd *cobra.Command, p *string, what string) {
	cmd.Flags().StringVar(p, "host", "", what)
	_ = cmd.RegisterFlagCompletionFunc("host", func(cmd *cobra.Command, _ []string, s string) ([]string, cobra.ShellCompDirective) {
		return a.completeHosts(cmd, nil, s)
	})
}

func (a *App) savedStateCmd() *cobra.Command {
	var host string
	cmd := callCmd(a, "saved-state", "The LLM state saved before an offload, which the orchestrator reloads the LLM from", noArgs,
		genailab.ServiceOrchestrator, func(ctx context.Context, c *genailab.Client, _ []string) (*orchestratorv1.GetSavedStateResponse, error) {
			return c.Orchestrator().GetSavedState(ctx, &orchestratorv1.GetSavedStateRequest{Host: host})
		}, a.printSavedStates)
	a.hostFlag(cmd, &host, "only this host's state (default: every host's)")
	return cmd
}

// printSavedStates shows each saved LLM state, a block of lines each, or says there is none.
func (a *App) printSavedStates(resp *orchestratorv1.GetSavedStateResponse) error {
	states := resp.GetStates()
	if len(states) == 0 {
		_, err := fmt.Fprintln(a.Stdout, "No saved LLM state: the LLM is not offloaded.")
		return err
	}
	for i, s := range states {
		if i > 0 {
			fmt.Fprintln(a.Stdout)
		}
		cfg := s.GetLlmConfig()
		if err := a.kv(
			"Host", orDash(termui.SanitizeLine(s.GetHost())),
			"Model", modelOf(cfg.GetModelId()),
			"Context", orDash(intOrEmpty(int64(cfg.GetContextSize()))),
			"Was running", yesNo(s.GetWasRunning()),
			"Saved", when(s.GetSavedAt()),
			"Reason", orDash(termui.SanitizeLine(s.GetReason())),
			"Reload attempts", fmt.Sprint(s.GetReloadAttempts()),
			"Last reload error", orDash(oneLine(s.GetLastReloadError())),
		); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) wouldNeedOffloadCmd() *cobra.Command {
	var host string
	var width, height int32
	var cmd *cobra.Command
	cmd = callCmd(a, "would-need-offload", "Whether an image of this size would need the LLM offloaded, with every number behind the decision",
		noArgs, genailab.ServiceOrchestrator, func(ctx context.Context, c *genailab.Client, _ []string) (*orchestratorv1.WouldNeedOffloadResponse, error) {
			p := &diffusionv1.ImageParams{}
			if changed(cmd.Flags(), "width") {
				p.Width = &width
			}
			if changed(cmd.Flags(), "height") {
				p.Height = &height
			}
			return c.Orchestrator().WouldNeedOffload(ctx, &orchestratorv1.WouldNeedOffloadRequest{Params: p, Host: host})
		}, a.printOffloadDecision)
	cmd.Flags().Int32VarP(&width, "width", "W", 0, "width in pixels, a multiple of 64 (default 512)")
	cmd.Flags().Int32VarP(&height, "height", "H", 0, "height in pixels, a multiple of 64 (default 512)")
	a.hostFlag(cmd, &host, "the host to decide for (default: the first ready host)")
	return cmd
}

// printOffloadDecision shows the decision and its numbers.
func (a *App) printOffloadDecision(d *orchestratorv1.WouldNeedOffloadResponse) error {
	memory := "RAM"
	if d.GetMemoryKind() == orchestratorv1.MemoryKind_MEMORY_KIND_VRAM {
		memory = fmt.Sprintf("VRAM of GPU %d", d.GetGpuIndex())
	}
	budget := "-"
	if b := d.GetBudgetBytes(); b > 0 {
		budget = termui.Bytes(b)
	}
	correction := termui.Bytes(uint64(d.GetLearnedCorrectionBytes()))
	if c := d.GetLearnedCorrectionBytes(); c < 0 {
		correction = "-" + termui.Bytes(uint64(-c))
	}
	return a.kv(
		"Needs offload", yesNo(d.GetNeedsOffload()),
		"Why", termui.SanitizeLine(d.GetExplanation()),
		"Memory", memory,
		"Required", termui.Bytes(d.GetRequiredBytes()),
		"  diffusion weights", termui.Bytes(d.GetDiffusionWeightsBytes()),
		"  activations", termui.Bytes(d.GetDiffusionActivationBytes()),
		"  learned correction", correction,
		"Free", termui.Bytes(d.GetFreeBytes()),
		"Headroom kept", termui.Bytes(d.GetHeadroomBytes()),
		"Budget", budget,
		"Other users", termui.Bytes(d.GetForeignBytes()),
		"LLM running", yesNo(d.GetLlmRunning()),
		"LLM would release", termui.Bytes(d.GetLlmReleaseBytes()),
	)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
