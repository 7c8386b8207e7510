package supervisor_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/pkg/supervisor"
)

// How a service runs llama-server: explicit environment without LLAMA_ARG_*,
// a checked port, /health as the readiness probe, the "listening on" line to
// probe at once, auto-restart, and a rotating log file.
func Example() {
	ctx := context.Background()
	if _, err := supervisor.ReapStale("/var/lib/genailab/run", slog.Default()); err != nil {
		slog.Warn("reap", "err", err)
	}
	s, err := supervisor.New(ctx, supervisor.Config{Name: "llm", PidDir: "/var/lib/genailab/run"})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)

	port, err := ports.Resolve("127.0.0.1", 0) // 0: pick a free one
	if err != nil {
		panic(err)
	}
	health := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	err = s.Start(ctx, supervisor.Spec{
		Path:       "llama-server",
		Args:       []string{"-m", "model.gguf", "--host", "127.0.0.1", "--port", strconv.Itoa(port)},
		InheritEnv: true,
		DropEnv:    supervisor.DropPrefixes("LLAMA_ARG_"),
		Host:       "127.0.0.1",
		Port:       port,
		Ready: func(ctx context.Context) (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		},
		ReadyOnLine:  func(l supervisor.Line) bool { return strings.Contains(l.Text, "listening on") },
		ReadyTimeout: 2 * time.Minute,
		Restart:      supervisor.RestartPolicy{Enabled: true},
		LogFile:      "/var/lib/genailab/log/llm.log",
	})
	if err != nil {
		// errors.Is(err, supervisor.ErrPortInUse), ErrExitedDuringStart
		// (with the log tail), ErrStartTimeout, ErrAlreadyRunning, ...
		fmt.Println(err)
		return
	}
	for ev := s.Events(0); ; {
		e, err := ev.Next(ctx)
		if err != nil {
			return
		}
		fmt.Println(e.Value.Kind, e.Value.State, e.Value.Exit)
	}
}
