package telemetry

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/genailab/genailab/services/monitor/internal/proctest"
)

func TestMain(m *testing.M) {
	proctest.MaybeHelper()
	os.Exit(m.Run())
}

// startHelper runs an engine stand-in process named name.
func startHelper(t *testing.T, name, mode string) *exec.Cmd {
	t.Helper()
	return proctest.Start(t, name, mode)
}

// logBuffer is a concurrency-safe log sink for asserting on log records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Count returns how many log lines contain s.
func (b *logBuffer) Count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
