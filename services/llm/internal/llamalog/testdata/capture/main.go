// Command capture runs the real llama-server through the situations the llamalog and llamaclient fixtures
// come from, writes the transcripts, and prints the facts it measured (readiness time, /health during
// load, what one SIGTERM does while a stream is in flight).
//
//	cd services/llm && go run ./internal/llamalog/testdata/capture
//
// It is a developer tool (not run by tests): rerun it after upgrading llama-server and review the diff.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/llamabin"
)

func main() {
	logDir := flag.String("log-dir", "internal/llamalog/testdata", "where stderr transcripts go")
	clientDir := flag.String("client-dir", "internal/llamaclient/testdata", "where HTTP fixtures go")
	bigDim := flag.Int("big-dim", 1024, "embedding size of the large model used to observe loading")
	bigLayers := flag.Int("big-layers", 6, "layers of the large model")
	runs := flag.Int("runs", 10, "start-to-ready repetitions for the tiny model")
	flag.Parse()
	c := &capture{logDir: *logDir, clientDir: *clientDir}
	if err := c.run(*bigDim, *bigLayers, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}

type capture struct {
	bin, tmp, logDir, clientDir string
}

func (c *capture) run(bigDim, bigLayers, runs int) error {
	f, err := llamabin.Resolve("")
	if err != nil {
		return err
	}
	c.bin = f.Path
	c.tmp, err = os.MkdirTemp("", "llama-capture-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(c.tmp)
	out, _ := exec.Command(c.bin, "--version").CombinedOutput()
	fmt.Printf("binary: %s (%s)\n%s\n", c.bin, f.Source, bytes.TrimSpace(out))

	tiny := filepath.Join(c.tmp, "tiny.gguf")
	if err := ggufgen.WriteFile(tiny, ggufgen.DefaultConfig()); err != nil {
		return err
	}
	medium := filepath.Join(c.tmp, "medium.gguf")
	if err := ggufgen.WriteFile(medium, ggufgen.Config{Seed: 2, Dim: 256, Layers: 4, Heads: 8, FFN: 512, Context: 4096}); err != nil {
		return err
	}
	big := filepath.Join(c.tmp, "big.gguf")
	bigCfg := ggufgen.Config{Seed: 3, Dim: bigDim, Layers: bigLayers, Heads: 16, FFN: bigDim * 11 / 4}
	if err := ggufgen.WriteFile(big, bigCfg); err != nil {
		return err
	}

	if err := c.normalStart(tiny); err != nil {
		return fmt.Errorf("normal start: %w", err)
	}
	if err := c.verboseStart(tiny); err != nil {
		return fmt.Errorf("verbose start: %w", err)
	}
	if err := c.failures(tiny); err != nil {
		return fmt.Errorf("failures: %w", err)
	}
	if err := c.readiness(tiny, runs); err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	if err := c.loading(big); err != nil {
		return fmt.Errorf("loading: %w", err)
	}
	if err := c.sigtermInFlight(medium); err != nil {
		return fmt.Errorf("sigterm in flight: %w", err)
	}
	return nil
}

// proc is a running llama-server with its stderr collected.
type proc struct {
	cmd     *exec.Cmd
	start   time.Time
	mu      sync.Mutex
	stderr  bytes.Buffer
	lines   chan string
	done    chan struct{}
	waitErr error
}

func (c *capture) start(args ...string) (*proc, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = llamabin.Env(os.Environ())
	cmd.Dir = c.tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, lines: make(chan string, 4096), done: make(chan struct{})}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		r := bufio.NewReader(pipe)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				p.mu.Lock()
				p.stderr.WriteString(line)
				p.mu.Unlock()
				select {
				case p.lines <- strings.TrimRight(line, "\n"):
				default:
				}
			}
			if err != nil {
				break
			}
		}
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) log() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.stderr.Bytes())
}

func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

func (p *proc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// healthState is one /health observation.
type healthState struct {
	status int    // 0: no HTTP answer
	body   string // or the connection error class
}

var client = &http.Client{Timeout: 2 * time.Second}

func probe(url string) healthState {
	resp, err := client.Get(url + "/health")
	if err != nil {
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return healthState{body: "connection refused"}
		case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout"):
			return healthState{body: "timeout"}
		case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF):
			return healthState{body: "connection reset/EOF"}
		}
		return healthState{body: "error: " + err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return healthState{status: resp.StatusCode, body: string(bytes.TrimSpace(b))}
}

// stable replaces the temporary directory (it appears in logs and in the "model" field) with a fixed path.
func (c *capture) stable(data []byte) []byte {
	return bytes.ReplaceAll(data, []byte(c.tmp), []byte("/tmp/models"))
}

func (c *capture) writeLog(name string, data []byte) error {
	return os.WriteFile(filepath.Join(c.logDir, name), c.stable(data), 0o644)
}

func (c *capture) writeClient(name string, data []byte) error {
	return os.WriteFile(filepath.Join(c.clientDir, name), c.stable(data), 0o644)
}

// post sends a chat request and returns status and the raw body.
func post(url, body string) (int, []byte, error) {
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// normalStart: start, health ok, requests of every kind, SIGTERM when idle.
func (c *capture) normalStart(tiny string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := c.start("-m", tiny, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "-t", "2", "-c", "256", "-np", "1")
	if err != nil {
		return err
	}
	defer p.kill()
	if err := waitHealthy(url, p, 30*time.Second); err != nil {
		return err
	}
	h := probe(url)
	if err := c.writeClient("health_ok.json", []byte(h.body+"\n")); err != nil {
		return err
	}
	reqs := []struct{ file, body string }{
		{"chat_nonstream.json", `{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":16,"seed":1}`},
		{"chat_stream.sse", `{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":16,"seed":1,"stream":true}`},
		{"chat_stream_usage.sse", `{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":16,"seed":2,"stream":true,"stream_options":{"include_usage":true}}`},
		{"chat_stream_long.sse", `{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Count to ten"}],"max_tokens":200,"seed":3,"stream":true}`},
		{"error_context_exceeded.json", `{"messages":[{"role":"user","content":"` + strings.Repeat("hello world ", 200) + `"}],"max_tokens":16,"stream":true}`},
		{"error_bad_json.json", `{"messages":[`},
		{"error_no_messages.json", `{"max_tokens":16,"stream":true}`},
	}
	fmt.Println("\n# HTTP fixtures (tiny model)")
	for _, r := range reqs {
		status, body, err := post(url, r.body)
		if err != nil {
			return fmt.Errorf("%s: %w", r.file, err)
		}
		fmt.Printf("%-28s HTTP %d, %d bytes\n", r.file, status, len(body))
		if err := c.writeClient(r.file, body); err != nil {
			return err
		}
	}
	t0 := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	exited := p.waitExit(10 * time.Second)
	fmt.Printf("idle SIGTERM: exited=%v after %v, code %d\n", exited, time.Since(t0).Round(time.Millisecond), exitCodeOr(p, exited))
	return c.writeLog("start_ok.log", p.log())
}

func exitCodeOr(p *proc, exited bool) int {
	if !exited {
		return -1
	}
	return p.exitCode()
}

func waitHealthy(url string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("exited before healthy:\n%s", p.log())
		default:
		}
		if h := probe(url); h.status == 200 {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("not healthy in %v:\n%s", timeout, p.log())
}

// verboseStart: the most verbose log level (-lv 4), which also has multi-line messages.
func (c *capture) verboseStart(tiny string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := c.start("-m", tiny, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "-t", "2", "-c", "256", "-np", "1", "-lv", "4")
	if err != nil {
		return err
	}
	defer p.kill()
	if err := waitHealthy(url, p, 30*time.Second); err != nil {
		return err
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.waitExit(10 * time.Second) {
		return errors.New("no exit after SIGTERM")
	}
	return c.writeLog("start_verbose.log", p.log())
}

// failures: every way start fails, transcripts and timings.
func (c *capture) failures(tiny string) error {
	data, err := os.ReadFile(tiny)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"empty.gguf":     nil,
		"garbage.gguf":   bytes.Repeat([]byte("this is not a GGUF file\n"), 100),
		"truncated.gguf": data[:len(data)*2/3],
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.tmp, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Println("\n# failures")
	cases := []struct{ log, model string }{
		{"missing_file.log", "missing.gguf"},
		{"empty_file.log", "empty.gguf"},
		{"garbage_file.log", "garbage.gguf"},
		{"truncated_file.log", "truncated.gguf"},
	}
	for _, cs := range cases {
		port, err := freePort()
		if err != nil {
			return err
		}
		p, err := c.start("-m", filepath.Join(c.tmp, cs.model), "--host", "127.0.0.1", "--port", fmt.Sprint(port))
		if err != nil {
			return err
		}
		if !p.waitExit(30 * time.Second) {
			p.kill()
			return fmt.Errorf("%s: still running", cs.model)
		}
		fmt.Printf("%-20s exit %d after %v\n", cs.log, p.exitCode(), time.Since(p.start).Round(time.Millisecond))
		// The path of the temporary dir appears in the transcript; make it stable.
		if err := c.writeLog(cs.log, p.log()); err != nil {
			return err
		}
	}
	// Port in use: hold a listener on the port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p, err := c.start("-m", tiny, "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	if err != nil {
		return err
	}
	if !p.waitExit(30 * time.Second) {
		p.kill()
		return errors.New("port in use: still running")
	}
	fmt.Printf("%-20s exit %d after %v\n", "port_in_use.log", p.exitCode(), time.Since(p.start).Round(time.Millisecond))
	return c.writeLog("port_in_use.log", bytes.ReplaceAll(p.log(), []byte(fmt.Sprint(port)), []byte("18080")))
}

// readiness: start → first /health 200 for the tiny model, polled every 1 ms.
func (c *capture) readiness(tiny string, runs int) error {
	var ds, listenDs []time.Duration
	for i := 0; i < runs; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		p, err := c.start("-m", tiny, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "-t", "2", "-c", "256", "-np", "1")
		if err != nil {
			return err
		}
		var listen time.Duration
		go func() {
			for l := range p.lines {
				if strings.Contains(l, "listening on") && listen == 0 {
					listen = time.Since(p.start)
				}
			}
		}()
		deadline := time.Now().Add(30 * time.Second)
		for probe(url).status != 200 {
			if time.Now().After(deadline) {
				p.kill()
				return errors.New("tiny model never ready")
			}
			time.Sleep(time.Millisecond)
		}
		ds = append(ds, time.Since(p.start))
		p.kill()
		listenDs = append(listenDs, listen)
	}
	slices.Sort(ds)
	fmt.Printf("\n# readiness (tiny model, %d runs, /health polled every 1 ms)\nstart→first 200: min %v median %v max %v\n",
		runs, ds[0].Round(time.Millisecond), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	slices.Sort(listenDs)
	fmt.Printf("start→'listening on' log line (read concurrently): median %v\n", listenDs[len(listenDs)/2].Round(time.Millisecond))
	return nil
}

// loading: /health transitions while a large model loads (explicit port).
func (c *capture) loading(big string) error {
	fi, err := os.Stat(big)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := c.start("-m", big, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "-t", "2", "-c", "512", "-np", "1")
	if err != nil {
		return err
	}
	defer p.kill()
	fmt.Printf("\n# /health while loading a %d MB model (explicit port)\n", fi.Size()>>20)
	var last healthState
	first := true
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		h := probe(url)
		if first || h != last {
			fmt.Printf("%8v  %d %s\n", time.Since(p.start).Round(time.Millisecond), h.status, h.body)
			if h.status == 503 {
				if err := c.writeClient("health_loading.json", []byte(h.body+"\n")); err != nil {
					return err
				}
			}
			last, first = h, false
		}
		if h.status == 200 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return c.writeLog("start_big_model.log", p.log())
}

// sigtermInFlight: one SIGTERM while a streaming completion is running.
func (c *capture) sigtermInFlight(medium string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := c.start("-m", medium, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "-t", "2", "-c", "4096", "-np", "1")
	if err != nil {
		return err
	}
	defer p.kill()
	if err := waitHealthy(url, p, 30*time.Second); err != nil {
		return err
	}
	resp, err := http.Post(url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"max_tokens":3500,"stream":true}`))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	type chunk struct{ at time.Time }
	chunks := make(chan chunk, 100000)
	streamEnd := make(chan error, 1)
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, "data: ") {
				chunks <- chunk{time.Now()}
			}
			if err != nil {
				streamEnd <- err
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		<-chunks
	}
	term := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	fmt.Println("\n# one SIGTERM during an in-flight streaming completion (medium model)")
	var healthLog []string
	var last healthState
	exited := false
	for time.Since(term) < 5*time.Second {
		if p.waitExit(0) {
			exited = true
			break
		}
		h := probe(url)
		if h != last || len(healthLog) == 0 {
			healthLog = append(healthLog, fmt.Sprintf("+%v %d %s", time.Since(term).Round(time.Millisecond), h.status, h.body))
			last = h
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := 0
	var lastChunk time.Time
	for done := false; !done; {
		select {
		case ch := <-chunks:
			if ch.at.After(term) {
				after++
				lastChunk = ch.at
			}
		default:
			done = true
		}
	}
	fmt.Printf("exited within 5 s of SIGTERM: %v\n", exited)
	fmt.Printf("/health after SIGTERM: %s\n", strings.Join(healthLog, "; "))
	fmt.Printf("stream chunks received after SIGTERM: %d", after)
	if after > 0 {
		fmt.Printf(" (last at +%v)", lastChunk.Sub(term).Round(time.Millisecond))
	}
	select {
	case err := <-streamEnd:
		fmt.Printf("; stream ended within 5 s: %v\n", err)
	default:
		fmt.Printf("; stream still open at +5 s\n")
	}
	if !exited {
		t2 := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		ok := p.waitExit(10 * time.Second)
		fmt.Printf("second SIGTERM: exited=%v after %v, code %d\n", ok, time.Since(t2).Round(time.Millisecond), exitCodeOr(p, ok))
		select {
		case err := <-streamEnd:
			fmt.Printf("client stream then ended with: %v\n", err)
		case <-time.After(2 * time.Second):
			fmt.Println("client stream still open 2 s after exit")
		}
	} else {
		fmt.Printf("exit code %d\n", p.exitCode())
	}
	return c.writeLog("sigterm_inflight.log", p.log())
}
