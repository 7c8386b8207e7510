package cli

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	commonv1 "github.com/genailab/genailab/gen/common/v1"
)

// logMsg is a StreamLogsResponse of any engine service.
type logMsg interface {
	proto.Message
	GetLine() *commonv1.LogLine
	GetMissed() uint64
}

// printLogs prints log lines as the engine wrote them (made safe for a terminal) until
// the stream ends or the command is interrupted.
func (a *App) printLogs(recv func() (logMsg, error)) error {
	for {
		m, err := recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if interrupted(err) {
				return nil
			}
			return err
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
