package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	commonv1 "github.com/genailab/genailab/gen/common/v1"
)

// logsCmd is the logs command of the engine that svc runs, with its one-line help: the
// engine's output from svc's genailab.common.v1.LogService (every engine service serves it).
func (a *App) logsCmd(svc genailab.Service, short string) *cobra.Command {
	var follow bool
	var tail int32
	cmd := &cobra.Command{
		Use:   "logs",
		Short: short,
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			stream, err := commonv1.NewLogServiceClient(c.Conn(svc)).StreamLogs(cmd.Context(), &commonv1.StreamLogsRequest{TailLines: &tail, Follow: follow})
			if err != nil {
				return a.at(svc, err)
			}
			return a.printLogs(svc, stream)
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().Int32VarP(&tail, "tail", "n", 100, "how many of the latest lines to print first")
	return cmd
}

// printLogs prints the log lines of svc's stream as the engine wrote them (made safe for a
// terminal) until the stream ends or the command is interrupted.
func (a *App) printLogs(svc genailab.Service, stream grpc.ServerStreamingClient[commonv1.StreamLogsResponse]) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || interrupted(err) {
				return nil
			}
			return a.at(svc, err)
		}
		if a.g.json {
			if err := a.printJSONLine(m); err != nil {
				return err
			}
			continue
		}
		if n := m.GetMissed(); n > 0 {
			fmt.Fprintf(a.Stdout, "[... %d lines skipped: this reader was too slow ...]\n", n)
		}
		raw := m.GetLine().GetRaw()
		if raw == "" {
			raw = m.GetLine().GetMessage()
		}
		fmt.Fprintln(a.Stdout, termui.SanitizeLine(raw))
	}
}
