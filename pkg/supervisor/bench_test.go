package supervisor

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The readiness benchmarks start the llama-server-like fake (listening at
// once, "loading" for 30 ms, then 200 on /health) and measure
//   - ns/op: launch to ready, and
//   - detect-µs: from the moment the fake turned ready (its own clock
//     reading, printed on stderr) to the moment the caller knew.
// The baseline launches the same fake with os/exec and polls /health in a
// tight loop (every 100 µs). Compare the two in the same run:
//
//	go test -run '^$' -bench ReadyDetection -benchtime 30x ./supervisor

func BenchmarkReadyDetection(b *testing.B) {
	b.Run("bare-exec-poll-100us", func(b *testing.B) {
		var detect time.Duration
		for b.Loop() {
			detect += bareStartReady(b)
		}
		b.ReportMetric(float64(detect.Microseconds())/float64(b.N), "detect-µs")
	})
	b.Run("supervisor", func(b *testing.B) { benchSupervisorReady(b, true) })
	// Without the "listening on" line trigger: the probe's backoff alone.
	b.Run("supervisor-probe-only", func(b *testing.B) { benchSupervisorReady(b, false) })
}

func benchSupervisorReady(b *testing.B, lineTrigger bool) {
	s := newSup(b, Config{Logger: discardLogger()})
	var detect time.Duration
	for b.Loop() {
		sp := serveSpec(b, "loading=30ms")
		if !lineTrigger {
			sp.ReadyOnLine = nil
		}
		loadedAt := make(chan int64, 1)
		sp.OnLine = chainOnLine(sp.OnLine, func(l Line) {
			if _, rest, ok := strings.Cut(l.Text, "loaded-at-ns "); ok {
				ns, _ := strconv.ParseInt(rest, 10, 64)
				loadedAt <- ns
			}
		})
		if err := s.Start(context.Background(), sp); err != nil {
			b.Fatal(err)
		}
		readyAt := s.Snapshot().ReadyAt
		b.StopTimer()
		detect += readyAt.Sub(time.Unix(0, <-loadedAt))
		if err := s.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(detect.Microseconds())/float64(b.N), "detect-µs")
}

// bareStartReady starts the fake and polls /health every 100 µs until 200;
// it returns how late the 200 was seen after the fake turned ready.
func bareStartReady(b *testing.B) time.Duration {
	cmd := exec.Command(testExe(b), "fake", "serve", "port=0", "loading=30ms")
	cmd.Env = fakeEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	portc, loadedAt := make(chan string, 1), make(chan int64, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "port: "); ok {
				portc <- rest
			}
			if _, rest, ok := strings.Cut(sc.Text(), "loaded-at-ns "); ok {
				ns, _ := strconv.ParseInt(rest, 10, 64)
				loadedAt <- ns
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	probe := httpProbe("http://127.0.0.1:" + <-portc + "/health")
	var seen time.Time
	for {
		if ok, _ := probe(context.Background()); ok {
			seen = time.Now()
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err := cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
		b.Fatal(err)
	}
	b.StartTimer()
	return seen.Sub(time.Unix(0, <-loadedAt))
}

func chainOnLine(a, b func(Line)) func(Line) {
	return func(l Line) {
		if a != nil {
			a(l)
		}
		b(l)
	}
}
