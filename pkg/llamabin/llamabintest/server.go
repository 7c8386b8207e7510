package llamabintest

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/testenv"
)

// Server is a real llama-server started for a test.
type Server struct {
	URL string // http://127.0.0.1:PORT
	Cmd *exec.Cmd

	mu      sync.Mutex
	logs    []string
	exited  chan struct{}
	waitErr error
}

var listeningRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// Start runs the real llama-server (testenv.RequireLlamaServer: skipping the test when there is none) with model on a
// kernel-chosen loopback port (--port 0; the port is read from its "listening on" log line) and waits for
// /health 200. extra arguments are appended (e.g. "-c", "4096"); the defaults are -t 2 -c 256 -np 1. The
// process group is killed when the test ends. The environment is the test's minus llama-server settings
// (llamabin.Env).
func Start(t testing.TB, model string, extra ...string) *Server {
	t.Helper()
	bin := testenv.RequireLlamaServer(t)
	args := append([]string{"-m", model, "--host", "127.0.0.1", "--port", "0", "-t", "2", "-c", "256", "-np", "1"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = llamabin.Env(os.Environ())
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start llama-server: %v", err)
	}
	s := &Server{Cmd: cmd, exited: make(chan struct{})}
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.logs = append(s.logs, sc.Text())
			s.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case url <- m[1]:
				default:
				}
			}
		}
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	})
	select {
	case s.URL = <-url:
	case <-s.exited:
		t.Fatalf("llama-server exited before listening (%v):\n%s", s.waitErr, s.Log())
	case <-time.After(60 * time.Second):
		t.Fatalf("llama-server did not listen within 60s:\n%s", s.Log())
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("llama-server not healthy within 60s (last: %v):\n%s", err, s.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Log returns the stderr lines so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// WaitLog waits until a stderr line contains substr and reports whether one did within timeout.
func (s *Server) WaitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(s.Log(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Exited is closed when the process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// String names the server in test output.
func (s *Server) String() string {
	return fmt.Sprintf("llama-server pid %d at %s", s.Cmd.Process.Pid, s.URL)
}
