package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/ports"
)

// testParse parses the fakes' llama-server style lines.
func testParse(text string) (slog.Level, string, bool) {
	f := strings.SplitN(text, " ", 3)
	if len(f) != 3 || len(f[1]) != 1 {
		return 0, "", false
	}
	switch f[1] {
	case "I":
		return slog.LevelInfo, f[2], true
	case "W":
		return slog.LevelWarn, f[2], true
	case "E":
		return slog.LevelError, f[2], true
	}
	return 0, "", false
}

func testExe(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func newSup(t testing.TB, cfg Config) *Supervisor {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freePort returns a free port not handed to another test of this run,
// chosen below the kernel's ephemeral range so that the tests' own client
// connections (probes) cannot take it between the pick and the bind.
func freePort(t testing.TB) int {
	portsMu.Lock()
	defer portsMu.Unlock()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			low, _ = strconv.Atoi(f[0])
		}
	}
	for range 1000 {
		var p int
		if low > 11000 {
			p = low - 10000 + rand.IntN(10000)
		} else {
			var err error
			if p, err = ports.Free(""); err != nil {
				t.Fatal(err)
			}
		}
		if !portsGiven[p] && ports.CheckFree("", p) == nil {
			portsGiven[p] = true
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// fakeEnv keeps race-enabled fakes from sleeping 1 s at exit.
var fakeEnv = []string{"GORACE=atexit_sleep_ms=0"}

// fakeSpec runs the test binary as a fake engine.
func fakeSpec(t testing.TB, mode string, args ...string) Spec {
	return Spec{
		Path:            testExe(t),
		Args:            append([]string{"fake", mode}, args...),
		Env:             fakeEnv,
		Parse:           testParse,
		TermGrace:       2 * time.Second,
		SecondTermGrace: 2 * time.Second,
		ReadyTimeout:    10 * time.Second,
	}
}

// serveSpec runs the llama-server-like fake with an HTTP readiness probe and
// the "listening on" line trigger. The fake listens on a port of its own
// choosing (port=0) and prints it; the probe learns it from that line. Tests
// that need a known port use serveSpecOn.
func serveSpec(t testing.TB, args ...string) Spec {
	sp := fakeSpec(t, "serve", append([]string{"port=0"}, args...)...)
	var port atomic.Int64
	sp.OnLine = func(l Line) {
		if _, rest, ok := strings.Cut(l.Text, "HTTP server is listening, hostname: 127.0.0.1, port: "); ok {
			p, _ := strconv.Atoi(rest)
			port.Store(int64(p))
		}
	}
	sp.Ready = func(ctx context.Context) (bool, error) {
		p := port.Load()
		if p == 0 {
			return false, errors.New("no port yet")
		}
		return httpProbe("http://127.0.0.1:" + strconv.FormatInt(p, 10) + "/health")(ctx)
	}
	sp.ReadyOnLine = func(l Line) bool { return strings.Contains(l.Text, "listening on") }
	return sp
}

// serveSpecOn is serveSpec on a given port, which the supervisor checks.
func serveSpecOn(t testing.TB, port int, args ...string) Spec {
	sp := fakeSpec(t, "serve", append([]string{"port=" + strconv.Itoa(port)}, args...)...)
	sp.Port = port
	sp.Ready = httpProbe("http://127.0.0.1:" + strconv.Itoa(port) + "/health")
	sp.ReadyOnLine = func(l Line) bool { return strings.Contains(l.Text, "listening on") }
	return sp
}

// startOnFreePort starts serveSpecOn on a free port, trying another port if
// some other process on this machine took the chosen one in the meantime.
func startOnFreePort(t testing.TB, s *Supervisor, mut func(*Spec), args ...string) (Spec, int) {
	t.Helper()
	for range 5 {
		port := freePort(t)
		sp := serveSpecOn(t, port, args...)
		if mut != nil {
			mut(&sp)
		}
		err := s.Start(context.Background(), sp)
		if err == nil {
			return sp, port
		}
		if !errors.Is(err, ErrPortInUse) {
			t.Fatalf("Start: %v", err)
		}
	}
	t.Fatal("no usable port")
	return Spec{}, 0
}

// nextEvent returns the next event of one of the kinds, failing the test
// after 10 s. It returns the kinds of the events skipped on the way too.
func nextEvent(t testing.TB, c *logring.Cursor[Event], kinds ...EventKind) (Event, []EventKind) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seen []EventKind
	for {
		e, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v (saw %v): %v", kinds, seen, err)
		}
		for _, k := range kinds {
			if e.Value.Kind == k {
				return e.Value, seen
			}
		}
		seen = append(seen, e.Value.Kind)
	}
}

// drainKinds returns the kinds of the events available now.
func drainKinds(c *logring.Cursor[Event]) []EventKind {
	var out []EventKind
	for {
		e, ok := c.TryNext()
		if !ok {
			return out
		}
		out = append(out, e.Value.Kind)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && !st.Zombie()
}

// assertGone fails unless no live process is left in process group pgid
// and none of pids lives. A process being killed may take a moment to
// leave the run queue, so this waits up to 2 s.
func assertGone(t testing.TB, pgid int, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		members, err := liveGroupMembers(pgid)
		if err != nil {
			t.Fatal(err)
		}
		var left []int
		for _, m := range members {
			left = append(left, m.Pid)
		}
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind (group %d): %v", pgid, left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLine returns the first output line containing sub, waiting up to 10 s
// (lines are read asynchronously and may trail an event).
func waitLine(t testing.TB, s *Supervisor, sub string) Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s.Logs(1 << 30)
	for {
		e, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("no line containing %q: %v", sub, err)
		}
		if strings.Contains(e.Value.Text, sub) {
			return e.Value
		}
	}
}

// childPid finds the "child pid N" line the serve fake prints.
func childPid(t testing.TB, s *Supervisor) int {
	t.Helper()
	_, rest, _ := strings.Cut(waitLine(t, s, "child pid ").Text, "child pid ")
	pid, err := strconv.Atoi(rest)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func linesContaining(lines []Line, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l.Text, sub) {
			n++
		}
	}
	return n
}
