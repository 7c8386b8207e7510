package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

func (a *App) resourcesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "resources", Short: "RAM, VRAM and the servers, live"}
	var interval time.Duration
	var count int
	watch := &cobra.Command{
		Use:   "watch",
		Short: "A live view of RAM, VRAM per GPU and the servers, redrawn in place (plain lines when not a terminal)",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			live := a.live()
			n := 0
			err = c.WatchUsage(ctx, interval, func(u *monitorv1.Usage, missed uint64) error {
				n++
				if a.g.json {
					if err := a.printJSONLine(&monitorv1.WatchUsageResponse{Usage: u, Missed: missed}); err != nil {
						return err
					}
				} else {
					s := a.servers(ctx, c)
					if live.TTY() {
						live.Draw(resourceLines(u, s, interval, live.Width())...)
					} else {
						fmt.Fprintln(a.Stdout, resourceLine(u, s)) // every snapshot, even an unchanged one
					}
				}
				if count > 0 && n >= count {
					stop()
				}
				return nil
			})
			return a.at(genailab.ServiceMonitor, err)
		}),
	}
	watch.Flags().DurationVarP(&interval, "interval", "i", time.Second, "time between snapshots (at least 100ms)")
	watch.Flags().IntVarP(&count, "count", "n", 0, "stop after this many snapshots (0: until interrupted)")
	cmd.AddCommand(watch)
	return cmd
}

// serverState is what the servers said at one snapshot (errors instead when unreachable).
type serverState struct {
	llm       *llmv1.LLMInfo
	llmErr    error
	diff      *diffusionv1.DiffusionInfo
	diffErr   error
	health    *orchestratorv1.GetHealthResponse
	healthErr error
}

// servers asks the three services for their state, together, with a short deadline.
func (a *App) servers(ctx context.Context, c *genailab.Client) serverState {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var s serverState
	var wg sync.WaitGroup
	wg.Go(func() {
		r, err := c.LLM().GetInfo(ctx, &llmv1.GetInfoRequest{})
		s.llm, s.llmErr = r.GetInfo(), err
	})
	wg.Go(func() {
		r, err := c.Diffusion().GetInfo(ctx, &diffusionv1.GetInfoRequest{})
		s.diff, s.diffErr = r.GetInfo(), err
	})
	wg.Go(func() { s.health, s.healthErr = c.Orchestrator().GetHealth(ctx, &orchestratorv1.GetHealthRequest{}) })
	wg.Wait()
	return s
}

// resourceLines is the terminal view.
func resourceLines(u *monitorv1.Usage, s serverState, interval time.Duration, width int) []string {
	barW := 30
	if width < 100 {
		barW = max(10, width-70)
	}
	mem := u.GetMemory()
	used := mem.GetTotalBytes() - mem.GetAvailableBytes()
	lines := []string{
		fmt.Sprintf("genailab resources at %s (every %s; Ctrl-C to stop)", u.GetTime().AsTime().Local().Format("15:04:05"), interval),
		"",
		fmt.Sprintf("CPU   %5.1f%%", u.GetCpuPercent()),
		fmt.Sprintf("RAM   %s %s / %s (%s), %s available", termui.Bar(barW, frac(used, mem.GetTotalBytes())), termui.Bytes(used),
			termui.Bytes(mem.GetTotalBytes()), termui.Percent(used, mem.GetTotalBytes()), termui.Bytes(mem.GetAvailableBytes())),
	}
	if len(u.GetGpus()) == 0 {
		lines = append(lines, "VRAM  no NVIDIA GPU (decisions use RAM)")
	}
	for _, g := range u.GetGpus() {
		lines = append(lines, fmt.Sprintf("GPU%d  %s %s / %s (%s), managed %s, foreign %s, %d%% busy, %d°C  %s", g.GetIndex(),
			termui.Bar(barW, frac(g.GetMemoryUsedBytes(), g.GetMemoryTotalBytes())), termui.Bytes(g.GetMemoryUsedBytes()),
			termui.Bytes(g.GetMemoryTotalBytes()), termui.Percent(g.GetMemoryUsedBytes(), g.GetMemoryTotalBytes()),
			termui.Bytes(g.GetManagedMemoryBytes()), termui.Bytes(g.GetForeignMemoryBytes()), g.GetUtilizationPercent(),
			g.GetTemperatureCelsius(), termui.SanitizeLine(g.GetName())))
	}
	lines = append(lines, "", "SERVER        STATE                    MODEL                 PID      MEMORY")
	procs := map[string]*monitorv1.ManagedProcess{}
	for _, p := range u.GetManagedProcesses() {
		procs[p.GetRole()] = p
	}
	lines = append(lines, serverRow("llm", llmState(s), modelOf(s.llm.GetModelId()), procs["llm"]))
	lines = append(lines, serverRow("diffusion", diffState(s), modelOf(s.diff.GetModelId()), procs["diffusion"]))
	lines = append(lines, serverRow("orchestrator", orchState(s), "", nil))
	return lines
}

func serverRow(name, state, model string, p *monitorv1.ManagedProcess) string {
	pid, memory := "-", "-"
	if p != nil {
		pid = fmt.Sprint(p.GetPid())
		memory = "RAM " + termui.Bytes(p.GetRssBytes())
		if v := p.GetGpuMemoryBytes(); v > 0 {
			memory += ", VRAM " + termui.Bytes(v)
		}
	}
	return fmt.Sprintf("%-13s %-24s %-21s %-8s %s", name, termui.Fit(state, 24), termui.Fit(model, 21), pid, memory)
}

func modelOf(id string) string {
	if id == "" {
		return "-"
	}
	return termui.SanitizeLine(id)
}

func llmState(s serverState) string {
	if s.llmErr != nil {
		return "unreachable"
	}
	st := enumName(s.llm.GetStatus().String(), "SERVER_STATUS_")
	if s.llm.GetOffloaded() {
		st += ", offloaded"
	}
	if n := s.llm.GetInFlightRequests(); n > 0 {
		st += fmt.Sprintf(", %d chats", n)
	}
	return st
}

func diffState(s serverState) string {
	if s.diffErr != nil {
		return "unreachable"
	}
	st := enumName(s.diff.GetStatus().String(), "SERVER_STATUS_")
	if s.diff.GetBusy() {
		st += ", busy"
		if p := s.diff.GetCurrent(); p != nil {
			st += " " + fmt.Sprintf("%.0f%%", p.GetPercent())
		}
	}
	return st
}

func orchState(s serverState) string {
	if s.healthErr != nil {
		return "unreachable"
	}
	st := termui.SanitizeLine(s.health.GetStatus())
	if s.health.GetBusy() {
		st += ", generating"
	} else {
		st += ", idle"
	}
	return st
}

// resourceLine is one plain line per snapshot.
func resourceLine(u *monitorv1.Usage, s serverState) string {
	mem := u.GetMemory()
	used := mem.GetTotalBytes() - mem.GetAvailableBytes()
	parts := []string{
		u.GetTime().AsTime().UTC().Format(time.RFC3339),
		fmt.Sprintf("cpu %.1f%%", u.GetCpuPercent()),
		fmt.Sprintf("ram %s/%s", termui.Bytes(used), termui.Bytes(mem.GetTotalBytes())),
	}
	for _, g := range u.GetGpus() {
		parts = append(parts, fmt.Sprintf("gpu%d %s/%s", g.GetIndex(), termui.Bytes(g.GetMemoryUsedBytes()), termui.Bytes(g.GetMemoryTotalBytes())))
	}
	parts = append(parts, "llm "+strings.ReplaceAll(llmState(s), " ", ""), "diffusion "+strings.ReplaceAll(diffState(s), " ", ""),
		"orchestrator "+strings.ReplaceAll(orchState(s), " ", ""))
	return strings.Join(parts, "  ")
}

func frac(part, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(part) / float64(total)
}
