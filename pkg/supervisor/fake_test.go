package supervisor

// Fake engines for the tests, run by re-executing the test binary as
// "<test binary> fake <mode> [key=value...]" (see TestMain). They print
// llama-server style log lines ("0.00.000.000 I main: ...") on stderr.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "fake" {
		runFake(os.Args[2], fakeOpts(os.Args[3:]))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type fakeOptions map[string]string

func fakeOpts(args []string) fakeOptions {
	o := fakeOptions{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		o[k] = v
	}
	return o
}

func (o fakeOptions) dur(k string) time.Duration {
	d, _ := time.ParseDuration(o[k])
	return d
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "0.00.000.000 I "+format+"\n", args...)
}

func errf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "0.00.000.000 E "+format+"\n", args...)
}

func runFake(mode string, o fakeOptions) {
	switch mode {
	case "serve":
		fakeServe(o)
	case "fail":
		logf("main: loading model")
		errf("gguf_init_from_file_impl: invalid magic characters: 'junk', expected 'GGUF'")
		errf("main: exiting due to model loading error")
		os.Exit(1)
	case "hang":
		handleTerm(o["term"])
		logf("main: loading model (this never ends)")
		select {}
	case "sleep":
		select {}
	case "stubborn": // as sleep, but survives SIGTERM
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM)
		logf("child: ignoring SIGTERM")
		for range ch {
			logf("child: got a SIGTERM, ignored")
		}
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Println("ENV " + kv)
		}
		if o["exit"] == "1" {
			return
		}
		select {}
	case "argv": // prints its arguments verbatim, one a line, and exits
		for _, a := range os.Args[3:] {
			fmt.Println("ARG " + a)
		}
	case "once":
		fakeOnce(o)
	case "progress":
		fakeProgress(o)
	case "host":
		fakeHost(o)
	default:
		fmt.Fprintln(os.Stderr, "unknown fake mode", mode)
		os.Exit(2)
	}
}

// handleTerm installs the SIGTERM behaviour: "" exits 0 on the first
// SIGTERM, "ignore-once" only on the second, "ignore" never.
func handleTerm(how string) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		n := 0
		for range ch {
			n++
			if how == "ignore" || how == "ignore-once" && n == 1 {
				logf("srv: received SIGTERM, ignoring it (request in flight)")
				continue
			}
			logf("srv: received SIGTERM, shutting down")
			os.Exit(0)
		}
	}()
}

// fakeServe behaves like llama-server: after delay it listens on port and
// answers /health 503 while loading, then 200.
func fakeServe(o fakeOptions) {
	if f := o["fail-if-exists"]; f != "" {
		if _, err := os.Stat(f); err == nil {
			errf("main: failed to open GGUF file '%s'", f)
			os.Exit(1)
		}
	}
	handleTerm(o["term"])
	if o["child"] == "1" {
		c := exec.Command(os.Args[0], "fake", "sleep") // same process group
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			errf("child: %v", err)
			os.Exit(3)
		}
		logf("main: child pid %d", c.Process.Pid)
	}
	logf("main: build info fake")
	time.Sleep(o.dur("delay"))
	l, err := net.Listen("tcp", "127.0.0.1:"+o["port"])
	if err != nil {
		errf("main: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: %s", o["port"])
		os.Exit(1)
	}
	var loaded atomic.Bool
	served := make(chan struct{}) // closed at the first 200
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		ok := loaded.Load()
		if ok {
			defer once.Do(func() { close(served) })
		}
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`)
			return
		}
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	go http.Serve(l, mux)
	port := l.Addr().(*net.TCPAddr).Port
	logf("main: HTTP server is listening, hostname: 127.0.0.1, port: %d", port)
	time.Sleep(o.dur("loading"))
	logf("main: model loaded")
	loaded.Store(true)
	logf("main: loaded-at-ns %d", time.Now().UnixNano())
	logf("main: server is listening on http://127.0.0.1:%d - starting the main loop", port)
	if d, ok := o["crash-after"]; ok { // that long after the first 200 on /health
		dd, _ := time.ParseDuration(d)
		<-served
		time.Sleep(dd)
		errf("main: about to crash")
		// Die by a real SIGSEGV: the Go runtime would turn a SIGSEGV into
		// exit code 2, so hand the pid to a shell that kills itself.
		_ = syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -SEGV $$"}, os.Environ())
		os.Exit(4)
	}
	select {}
}

// fakeOnce is a one-shot job (RunOnce): with child=<mode> it starts a child
// of that mode in its own process group and prints "child pid N"; it prints
// out= on stdout and err= on stderr; then it exits with code=, dies by
// die=SEGV, or, with hang=1, waits (SIGTERM as term=, see handleTerm).
func fakeOnce(o fakeOptions) {
	handleTerm(o["term"])
	if m := o["child"]; m != "" {
		c := exec.Command(os.Args[0], "fake", m) // same process group
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			errf("child: %v", err)
			os.Exit(3)
		}
		logf("main: child pid %d", c.Process.Pid)
	}
	if v := o["out"]; v != "" {
		fmt.Println(v)
	}
	if v := o["err"]; v != "" {
		fmt.Fprintln(os.Stderr, v)
	}
	if o["die"] == "SEGV" {
		_ = syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -SEGV $$"}, os.Environ())
	}
	if o["hang"] == "1" {
		select {}
	}
	code, _ := strconv.Atoi(o["code"])
	os.Exit(code)
}

// fakeProgress prints sd.cpp-style in-place progress updates. Step k is
// printed, then the fake waits until the file ack-k exists in dir, so the
// test proves each update was delivered before the next one was written.
func fakeProgress(o fakeOptions) {
	steps, _ := strconv.Atoi(o["steps"])
	fmt.Print("[INFO ] stable-diffusion.cpp:3000 - sampling using Euler A method\n")
	for k := 1; k <= steps; k++ {
		bar := strings.Repeat("=", k*10/steps) + ">" + strings.Repeat(" ", 10-k*10/steps)
		if o["style"] == "cr-terminated" {
			fmt.Printf("  |%s| %d/%d - 1.00it/s\r", bar, k, steps)
		} else { // as sd.cpp: "\r" + bar + ESC[K
			fmt.Printf("\r  |%s| %d/%d - 1.00it/s\x1b[K", bar, k, steps)
		}
		ack := filepath.Join(o["dir"], "ack-"+strconv.Itoa(k))
		for {
			if _, err := os.Stat(ack); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Print("\n[INFO ] stable-diffusion.cpp:3100 - sampling completed\n")
	select {}
}

// fakeHost is a service that supervises a "serve" engine (with once=1: runs
// it with RunOnce); the test kills the host with SIGKILL and checks the
// engine dies too (parent-death signal). Before reporting, it ends a number
// of OS threads (goroutines that exit while locked) to show the engine's
// thread is not among them.
func fakeHost(o fakeOptions) {
	exe, _ := os.Executable()
	var port atomic.Int64
	spec := Spec{
		Path: exe,
		Args: []string{"fake", "serve", "port=0"},
		Env:  []string{"GORACE=atexit_sleep_ms=0"},
	}
	listening := func(l Line) bool {
		_, rest, ok := strings.Cut(l.Text, "listening on http://127.0.0.1:")
		if ok {
			p, _ := strconv.Atoi(strings.Fields(rest)[0])
			port.Store(int64(p))
		}
		return ok
	}
	var pid func() (int, State)
	if o["once"] == "1" {
		ready := make(chan struct{})
		var once sync.Once
		var engine atomic.Int64
		spec.OnStart = func(p int) { engine.Store(int64(p)) }
		spec.OnLine = func(l Line) {
			if listening(l) {
				once.Do(func() { close(ready) })
			}
		}
		go func() {
			res, err := RunOnce(context.Background(), spec)
			errf("engine ended: %+v %v", res.Exit, err)
			os.Exit(5)
		}()
		<-ready
		pid = func() (int, State) { return int(engine.Load()), StateRunning }
	} else {
		s, err := New(context.Background(), Config{Name: "hosted"})
		if err != nil {
			panic(err)
		}
		spec.ReadyOnLine = listening
		if err := s.Start(context.Background(), spec); err != nil {
			panic(err)
		}
		pid = func() (int, State) { snap := s.Snapshot(); return snap.Pid, snap.State }
	}
	if ok, err := httpProbe(fmt.Sprintf("http://127.0.0.1:%d/health", port.Load()))(context.Background()); !ok {
		panic(err)
	}
	// Waves of goroutines that exit while locked: the runtime terminates
	// their threads, which are picked from the idle ones each time.
	done := make(chan struct{})
	for range 20 {
		for range 8 {
			go func() {
				runtime.LockOSThread()
				done <- struct{}{}
			}()
		}
		for range 8 {
			<-done
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	p, state := pid()
	fmt.Printf("engine pid %d state %s\n", p, state)
	select {}
}

// httpProbe is a readiness probe: GET url answers 200.
func httpProbe(url string) Probe {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("health: %s", resp.Status)
		}
		return true, nil
	}
}
