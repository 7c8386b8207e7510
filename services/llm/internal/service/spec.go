package service

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/llm/internal/llamalog"
)

// Readiness polling: llama-server answers /health with connection refused,
// then 503 while loading, then 200. The first probes come fast (the tiny
// test model is ready in ~0.2 s) and the "listening on" line, printed the
// moment the model is loaded, triggers an immediate probe; the backoff cap
// only matters for models that load for seconds.
const (
	probeInitial = time.Millisecond
	probeMax     = 20 * time.Millisecond
	probeTimeout = 2 * time.Second
	startTail    = 30
	logFileName  = "llama-server.log"
)

// termRepeat is how long a stop waits before it repeats its first SIGTERM.
// llama-server drops a SIGTERM that arrives just after it starts listening
// (its main loop has not begun; about 1 stop in 12 issued right after
// ready) and exits at once on the next one, so without the repeat such a
// stop waited the whole TermGrace. A server shutting down normally (no
// request in flight: the service interrupts chats before it stops) is gone
// well within it.
const termRepeat = 150 * time.Millisecond

// spec is the supervisor Spec for a resolved configuration.
func (s *Service) spec(r *resolved, bin string, readyTimeout time.Duration) supervisor.Spec {
	health := s.healthProbe(baseURL(r.cfg.GetHost(), int(r.cfg.GetPort())))
	restart := s.opts.Restart
	restart.Enabled = r.cfg.GetAutoRestart()
	sp := supervisor.Spec{
		Path: bin,
		Args: r.args,
		Dir:  s.opts.LogDir,
		// Only PATH, HOME, locale, GPU selection and the like: the
		// service's tokens and GENAILAB_* settings stay with it.
		InheritEnv: true,
		KeepEnv:    supervisor.EngineEnv,
		// LLAMA_ARG_* and friends would silently change llama-server's
		// settings.
		DropEnv:         llamabin.Stripped,
		Host:            r.cfg.GetHost(),
		Port:            int(r.cfg.GetPort()),
		Ready:           health,
		ReadyOnLine:     readyLine,
		ReadyTimeout:    readyTimeout,
		ProbeTimeout:    probeTimeout,
		ProbeBackoff:    supervisor.Backoff{Initial: probeInitial, Max: probeMax},
		Health:          health,
		HealthInterval:  s.opts.HealthInterval,
		TermGrace:       s.opts.TermGrace,
		SecondTermGrace: s.opts.TermGrace,
		TermRepeat:      termRepeat,
		Restart:         restart,
		Parse:           parseLine,
		TailLines:       startTail,
	}
	if s.opts.LogDir != "" {
		sp.LogFile = filepath.Join(s.opts.LogDir, logFileName)
	}
	if s.apiKey != "" {
		// In the environment, which only this user can read, not on the
		// command line, which every local user can (ps).
		sp.Env = append(sp.Env, "LLAMA_API_KEY="+s.apiKey)
	}
	return sp
}

// parseLine is the supervisor Parser for llama-server's log lines.
func parseLine(text string) (slog.Level, string, bool) {
	l := llamalog.Parse(text)
	if !l.Prefixed {
		return 0, "", false
	}
	return l.Level.Slog(), l.Text(), true
}

// readyLine reports the "listening on" line, logged when the model is
// loaded and /health turns 200.
func readyLine(l supervisor.Line) bool {
	ev, _ := llamalog.Classify(llamalog.Parse(l.Text))
	return ev == llamalog.EventListening
}

// explainStart puts the reason llama-server gave (from its log tail) in
// front of a failed start's error. A bind failure also matches
// supervisor.ErrPortInUse.
func explainStart(err error) error {
	var se *supervisor.StartError
	if !errors.As(err, &se) || len(se.Tail) == 0 {
		return err
	}
	lines := make([]llamalog.Line, len(se.Tail))
	bindFailed := false
	for i, t := range se.Tail {
		lines[i] = llamalog.Parse(t)
		if ev, _ := llamalog.Classify(lines[i]); ev == llamalog.EventBindFailed {
			bindFailed = true
		}
	}
	cause := llamalog.Cause(lines)
	if cause == "" {
		return err
	}
	if bindFailed {
		return fmt.Errorf("start llama-server: %s: %w: %w", cause, supervisor.ErrPortInUse, err)
	}
	return fmt.Errorf("start llama-server: %s: %w", cause, err)
}
