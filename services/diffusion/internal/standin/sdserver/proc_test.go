package sdserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

// The test binary doubles as the stand-in (helper-process pattern).
func TestMain(m *testing.M) {
	if os.Getenv("SDSERVER_TEST_HELPER") == "1" {
		Main()
	}
	os.Exit(m.Run())
}

const ref = "../testdata/sdcpp"

func readRef(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ref, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	port           int
	done           chan struct{}
	base           string
}

func modelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := sdmodel.WriteTestModel(filepath.Join(dir, "tinysd.gguf")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func command(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Args = append([]string{"sd-server"}, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SDSERVER_TEST_HELPER=1", "SDSTANDIN_STEP_MS=1", "SDSTANDIN_STAGE_MS=1")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

var listening = regexp.MustCompile(`listening on: http://127\.0\.0\.1:(\d+)\n`)

// start runs the stand-in and waits for `listening on`.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: command(dir, env, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listening.FindSubmatch(p.stdout.Bytes()); m != nil {
			p.port, _ = strconv.Atoi(string(m[1]))
			p.base = "http://127.0.0.1:" + string(m[1])
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("stand-in exited: %v\nstdout %s\nstderr %s", p.cmd.ProcessState, p.stdout.Bytes(), p.stderr.Bytes())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no `listening on` line")
		}
	}
}

// signalled waits for the process to end and returns the signal that killed it (0 if none).
func (p *proc) signalled(t *testing.T) syscall.Signal {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("stand-in did not exit")
	}
	if ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		return ws.Signal()
	}
	return 0
}

type response struct {
	status int
	header http.Header
	body   []byte
}

var client = &http.Client{Timeout: 30 * time.Second}

func (p *proc) do(t *testing.T, method, path string, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, p.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header.Clone()
	if resp.Close && h.Get("Connection") == "" {
		h.Set("Connection", "close") // net/http moves `Connection: close` into resp.Close
	}
	return response{resp.StatusCode, h, b}
}

// waitStatus polls a job until its status is one of want.
func (p *proc) waitStatus(t *testing.T, id string, want ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := p.do(t, "GET", "/sdcpp/v1/jobs/"+id, nil)
		v := decode(t, r.body)
		for _, w := range want {
			if v["status"] == w {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s stuck in %v, want %v", id, v["status"], want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := jsonUnmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %q", b[:min(len(b), 200)])
	}
	return v
}

// waitOutput waits until the process's stdout matches re.
func (p *proc) waitOutput(t *testing.T, re *regexp.Regexp) { t.Helper(); waitFor(t, p.stdout, re) }

// waitStderr waits until the process's stderr matches re (it is copied asynchronously).
func (p *proc) waitStderr(t *testing.T, re *regexp.Regexp) { t.Helper(); waitFor(t, p.stderr, re) }

func waitFor(t *testing.T, b *syncBuffer, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !re.Match(b.Bytes()) {
		if time.Now().After(deadline) {
			t.Fatalf("output never matched %s: %q", re, b.Bytes())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ = strings.TrimSpace
