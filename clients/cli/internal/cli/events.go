package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// eventTypes are the short names of the event types ("job_queued", ...).
func eventTypes() []string {
	var out []string
	for v, name := range orchestratorv1.EventType_name {
		if v != 0 {
			out = append(out, enumName(name, "EVENT_TYPE_"))
		}
	}
	sort.Strings(out)
	return out
}

func (a *App) eventsCmd() *cobra.Command {
	var follow bool
	var backlog int32
	var typeNames []string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Lifecycle and orchestration events: the recent ones, then new ones with -f",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			req := &orchestratorv1.WatchEventsRequest{Backlog: backlog, Follow: follow}
			for _, n := range typeNames {
				v, ok := orchestratorv1.EventType_value["EVENT_TYPE_"+strings.ToUpper(n)]
				if !ok || v == 0 {
					return fmt.Errorf("--type %q: want one of %s", n, strings.Join(eventTypes(), ", "))
				}
				req.Types = append(req.Types, orchestratorv1.EventType(v))
			}
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			stream, err := c.Orchestrator().WatchEvents(cmd.Context(), req)
			if err != nil {
				return a.at(genailab.ServiceOrchestrator, err)
			}
			for {
				m, err := stream.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) || (follow && isCanceled(err)) {
						return nil
					}
					return a.at(genailab.ServiceOrchestrator, err)
				}
				if a.g.json {
					if err := a.printJSONLine(m); err != nil {
						return err
					}
					continue
				}
				e := m.GetEvent()
				line := fmt.Sprintf("%s  %-18s", e.GetTime().AsTime().Local().Format(time.DateTime), enumName(e.GetType().String(), "EVENT_TYPE_"))
				if id := e.GetJobId(); id != "" {
					line += "  " + id
				}
				fmt.Fprintln(a.Stdout, line+"  "+termui.SanitizeLine(e.GetMessage()))
			}
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().Int32VarP(&backlog, "backlog", "n", 50, "how many recent events to print first")
	cmd.Flags().StringArrayVar(&typeNames, "type", nil, "only events of this type (job_queued, llm_started, offload_started, ...); repeatable")
	_ = cmd.RegisterFlagCompletionFunc("type", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return eventTypes(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}
