// Command sdmem-bench measures the real stable-diffusion.cpp's memory per image size and
// engine mode, and compares it with the orchestrator's diffusion estimate and with
// gguf-parser-go's stable-diffusion.cpp estimator. It prints a Markdown table; -json also
// writes the measurements as the fixture that the estimate's unit test checks
// (internal/estimate/testdata/sdmem.json).
//
// CLI mode: one sd-cli per image, its peak RSS from wait4's rusage (ru_maxrss).
// Server mode: one sd-server per model; its RSS once it listens (nothing generated yet),
// then for each image the peak (VmHWM, reset through /proc/PID/clear_refs before each job,
// and the highest VmRSS sampled every 10 ms while it generates) and the RSS it keeps
// between jobs.
//
//	go run ./cmd/sdmem-bench -models "tinysd q4_0=@tinysd,tinysd f16=/tmp/tinysd-f16.gguf" \
//	    -sizes 64,128,256,512 -steps 2 -threads 2 -json internal/estimate/testdata/sdmem.json
//
// -from FILE prints the table from a recorded fixture without running anything.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
)

// Fixture is what one measuring session recorded.
type Fixture struct {
	Engine  string  `json:"engine"`
	Machine string  `json:"machine"`
	Threads int     `json:"threads"`
	Models  []Model `json:"models"`
	Runs    []Run   `json:"runs"`
}

// Model is one model file measured.
type Model struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Bytes uint64 `json:"bytes"`
	// ParamsBytes is what sd.cpp reports as "total params memory size".
	ParamsBytes uint64 `json:"params_bytes,omitempty"`
	// ServerStartRSSBytes is sd-server's RSS once it listens, before any image.
	ServerStartRSSBytes uint64 `json:"server_start_rss_bytes,omitempty"`
}

// Run is one image.
type Run struct {
	Model  string `json:"model"`
	Mode   string `json:"mode"` // "cli" or "server"
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Steps  int    `json:"steps"`
	// PeakRSSBytes is the process's peak resident memory during the image.
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	// BeforeRSSBytes and AfterRSSBytes are sd-server's RSS just before and after the job.
	BeforeRSSBytes uint64 `json:"before_rss_bytes,omitempty"`
	AfterRSSBytes  uint64 `json:"after_rss_bytes,omitempty"`
	// GGUFParserBytes is gguf-parser-go's estimate of the image (0: not computed).
	GGUFParserBytes uint64  `json:"gguf_parser_bytes,omitempty"`
	Seconds         float64 `json:"seconds"`
}

func main() {
	var (
		dir      = flag.String("sdcpp", "", "directory with sd-cli and sd-server (default: GENAILAB_SDCPP_DIR, else ../shared/engines/sdcpp/bin)")
		cliBin   = flag.String("cli", "", "sd-cli (overrides -sdcpp)")
		srvBin   = flag.String("server", "", "sd-server (overrides -sdcpp)")
		models   = flag.String("models", "", "comma-separated name=path of GGUF models; the path @tinysd is the tiny test model, generated into the test cache when missing (default: tinysd q4_0=@tinysd)")
		sizesF   = flag.String("sizes", "64,128,256,512", "comma-separated square image sizes")
		steps    = flag.Int("steps", 2, "sampling steps (memory does not depend on them)")
		threads  = flag.Int("threads", 2, "engine threads (-t)")
		modesF   = flag.String("modes", "cli,server", "comma-separated engine modes: cli, server")
		stepsChk = flag.String("steps-check", "", "SIZE:STEPS,STEPS… : also run sd-cli at SIZE with each step count (shows that steps do not change the peak)")
		jsonOut  = flag.String("json", "", "write the measurements to this fixture file")
		from     = flag.String("from", "", "print the table from this fixture instead of measuring")
		machine  = flag.String("machine", "", "machine description recorded in the fixture")
	)
	flag.Parse()
	if *from != "" {
		fx, err := readFixture(*from)
		if err != nil {
			fail(err)
		}
		printTable(os.Stdout, fx)
		return
	}
	cli, srv := *cliBin, *srvBin
	if cli == "" || srv == "" {
		var s testenv.SDCPP
		var err error
		if *dir != "" {
			os.Setenv(testenv.SDCPPDirEnv, *dir)
		}
		if s, err = testenv.FindSDCPP(); err != nil {
			fail(err)
		}
		cli, srv = cmpOr(cli, s.CLI), cmpOr(srv, s.Server)
	}
	specs, err := parseModels(*models)
	if err != nil {
		fail(err)
	}
	sizes, err := ints(*sizesF)
	if err != nil {
		fail(fmt.Errorf("-sizes: %w", err))
	}
	fx := Fixture{Engine: engineVersion(cli), Machine: *machine, Threads: *threads}
	if fx.Machine == "" {
		fx.Machine = describeMachine()
	}
	modes := strings.Split(*modesF, ",")
	for _, m := range specs {
		st, err := os.Stat(m.path)
		if err != nil {
			fail(err)
		}
		model := Model{Name: m.name, File: filepath.Base(m.path), Bytes: uint64(st.Size())}
		for _, mode := range modes {
			switch strings.TrimSpace(mode) {
			case "cli":
				for _, s := range sizes {
					r, params, err := runCLI(cli, m.path, s, *steps, *threads)
					if err != nil {
						fail(fmt.Errorf("%s %d² cli: %w", m.name, s, err))
					}
					model.ParamsBytes = cmpOr(model.ParamsBytes, params)
					r.Model = m.name
					fx.Runs = append(fx.Runs, r)
					progress(r)
				}
			case "server":
				start, runs, err := runServer(srv, m.path, sizes, *steps, *threads)
				if err != nil {
					fail(fmt.Errorf("%s server: %w", m.name, err))
				}
				model.ServerStartRSSBytes = start
				for _, r := range runs {
					r.Model = m.name
					fx.Runs = append(fx.Runs, r)
					progress(r)
				}
			default:
				fail(fmt.Errorf("unknown mode %q", mode))
			}
		}
		if *stepsChk != "" {
			size, counts, ok := strings.Cut(*stepsChk, ":")
			s, err1 := strconv.Atoi(size)
			cs, err2 := ints(counts)
			if !ok || err1 != nil || err2 != nil {
				fail(fmt.Errorf("-steps-check %q: want SIZE:STEPS,STEPS", *stepsChk))
			}
			for _, n := range cs {
				r, _, err := runCLI(cli, m.path, s, n, *threads)
				if err != nil {
					fail(err)
				}
				r.Model, r.Mode = m.name, "cli-steps"
				fx.Runs = append(fx.Runs, r)
				progress(r)
			}
		}
		for i := range fx.Runs {
			if r := &fx.Runs[i]; r.Model == m.name {
				if e, err := estimate.DiffusionFromFile(m.path, r.Width, r.Height); err == nil {
					r.GGUFParserBytes = e.TotalBytes
				}
			}
		}
		fx.Models = append(fx.Models, model)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(fx, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fail(err)
		}
	}
	printTable(os.Stdout, fx)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sdmem-bench:", err)
	os.Exit(1)
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

func progress(r Run) {
	fmt.Fprintf(os.Stderr, "%s %s %dx%d %d steps: peak %s (%.1f s)\n", r.Model, r.Mode, r.Width, r.Height, r.Steps, mib(r.PeakRSSBytes), r.Seconds)
}

type modelSpec struct{ name, path string }

func parseModels(s string) ([]modelSpec, error) {
	if s == "" {
		s = "tinysd q4_0=@tinysd"
	}
	var out []modelSpec
	for _, part := range strings.Split(s, ",") {
		name, path, ok := strings.Cut(part, "=")
		if !ok {
			name, path = strings.TrimSuffix(filepath.Base(part), ".gguf"), part
		}
		if path == "@tinysd" {
			p, err := testenv.TinySDModel()
			if err != nil {
				return nil, err
			}
			path = p
		}
		out = append(out, modelSpec{name, path})
	}
	return out, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func engineVersion(cli string) string {
	out, _ := exec.Command(cli, "--version").Output()
	return strings.TrimSpace(string(out))
}

func describeMachine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs visible", cpu, numCPU())
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}

// paramsBytes finds sd.cpp's "total params memory size = 76.02MB" in its output.
func paramsBytes(out []byte) uint64 {
	const key = "total params memory size = "
	i := bytes.Index(out, []byte(key))
	if i < 0 {
		return 0
	}
	rest := out[i+len(key):]
	j := bytes.Index(rest, []byte("MB"))
	if j < 0 {
		return 0
	}
	f, err := strconv.ParseFloat(string(rest[:j]), 64)
	if err != nil {
		return 0
	}
	return uint64(f * (1 << 20))
}

func runCLI(bin, model string, size, steps, threads int) (Run, uint64, error) {
	out, err := os.CreateTemp("", "sdmem-*.png")
	if err != nil {
		return Run{}, 0, err
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.Command(bin, "-m", model, "-p", "a red fox", "-W", strconv.Itoa(size), "-H", strconv.Itoa(size),
		"--steps", strconv.Itoa(steps), "-s", "42", "-t", strconv.Itoa(threads), "-o", out.Name())
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return Run{}, 0, fmt.Errorf("%w: %s", err, tail(buf.Bytes()))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return Run{}, 0, errors.New("no rusage")
	}
	return Run{Mode: "cli", Width: size, Height: size, Steps: steps, PeakRSSBytes: uint64(ru.Maxrss) << 10,
		Seconds: time.Since(t0).Seconds()}, paramsBytes(buf.Bytes()), nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// status reads VmRSS and VmHWM of pid, in bytes.
func status(pid int) (rss, hwm uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func runServer(bin, model string, sizes []int, steps, threads int) (uint64, []Run, error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command(bin, "-m", model, "--listen-ip", "127.0.0.1", "--listen-port", strconv.Itoa(port), "-t", strconv.Itoa(threads))
	var log bytes.Buffer
	var logMu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return log.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			logMu.Lock()
			defer logMu.Unlock()
			return 0, nil, fmt.Errorf("sd-server exited (%v): %s", err, tail(log.Bytes()))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, nil, errors.New("sd-server did not listen within 2 minutes")
		}
	}
	pid := cmd.Process.Pid
	time.Sleep(500 * time.Millisecond)
	start, _, err := status(pid)
	if err != nil {
		return 0, nil, err
	}
	var runs []Run
	client := &http.Client{Timeout: 10 * time.Minute}
	for _, s := range sizes {
		before, _, _ := status(pid)
		// "5" resets the peak resident set size (VmHWM) to the current RSS.
		hwmReset := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
		ctx, cancel := context.WithCancel(context.Background())
		var sampled uint64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if rss, _, err := status(pid); err == nil {
					sampled = max(sampled, rss)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		body, _ := json.Marshal(map[string]any{"prompt": "a red fox", "width": s, "height": s, "steps": steps, "seed": 42})
		t0 := time.Now()
		resp, err := client.Post(base+"/sdapi/v1/txt2img", "application/json", bytes.NewReader(body))
		secs := time.Since(t0).Seconds()
		cancel()
		wg.Wait()
		if err != nil {
			return 0, nil, err
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(rb, []byte(`"images":["`)) {
			return 0, nil, fmt.Errorf("txt2img %d²: %s %.300s", s, resp.Status, rb)
		}
		_, hwm, _ := status(pid)
		peak := sampled
		if hwmReset {
			peak = max(peak, hwm)
		}
		time.Sleep(300 * time.Millisecond)
		after, _, _ := status(pid)
		runs = append(runs, Run{Mode: "server", Width: s, Height: s, Steps: steps, PeakRSSBytes: peak,
			BeforeRSSBytes: before, AfterRSSBytes: after, Seconds: secs})
	}
	return start, runs, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func readFixture(path string) (Fixture, error) {
	var fx Fixture
	b, err := os.ReadFile(path)
	if err != nil {
		return fx, err
	}
	return fx, json.Unmarshal(b, &fx)
}

func mode(s string) estimate.EngineMode {
	if s == "server" {
		return estimate.ModeServer
	}
	return estimate.ModeCLI
}

func mib(n uint64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func pct(est, measured uint64) string {
	if measured == 0 || est == 0 {
		return "—"
	}
	e := math.Round(100 * (float64(est) - float64(measured)) / float64(measured))
	if e == 0 {
		return "0 %"
	}
	return fmt.Sprintf("%+.0f %%", e)
}

// printTable writes the estimate-vs-measured table: each image's measured peak RSS, the
// orchestrator's estimate (EstimateDiffusion from the model's file size, no correction)
// and gguf-parser-go's, with their errors.
func printTable(w io.Writer, fx Fixture) {
	models := map[string]Model{}
	for _, m := range fx.Models {
		models[m.Name] = m
	}
	fmt.Fprintf(w, "Engine: %s; %s; -t %d.\n\n", fx.Engine, fx.Machine, fx.Threads)
	fmt.Fprintln(w, "| model (file size) | mode | size | steps | measured peak RSS | estimate | error | gguf-parser-go | error |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range fx.Runs {
		m := models[r.Model]
		e := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: m.Bytes, Width: r.Width, Height: r.Height, Mode: mode(r.Mode)})
		gp := "—"
		if r.GGUFParserBytes > 0 {
			gp = mib(r.GGUFParserBytes)
		}
		fmt.Fprintf(w, "| %s (%.1f MB) | %s | %d² | %d | %s | %s | %s | %s | %s |\n", r.Model, float64(m.Bytes)/1e6, r.Mode, r.Width, r.Steps,
			mib(r.PeakRSSBytes), mib(e.TotalBytes), pct(e.TotalBytes, r.PeakRSSBytes), gp, pct(r.GGUFParserBytes, r.PeakRSSBytes))
	}
	header := false
	for _, m := range fx.Models {
		var kept []string
		var last uint64
		for _, r := range fx.Runs {
			if r.Model == m.Name && r.Mode == "server" {
				kept = append(kept, fmt.Sprintf("%d²: %s", r.Width, mib(r.AfterRSSBytes)))
				last = max(last, r.AfterRSSBytes)
			}
		}
		if len(kept) == 0 {
			continue
		}
		if !header {
			header = true
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| model | sd.cpp params | sd-server RSS after start | RSS kept between jobs (after each size) | resident estimate | error |")
			fmt.Fprintln(w, "| --- | ---: | ---: | --- | ---: | ---: |")
		}
		res := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: m.Bytes, Mode: estimate.ModeServer}).ResidentBytes()
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", m.Name, mib(m.ParamsBytes), mib(m.ServerStartRSSBytes),
			strings.Join(kept, ", "), mib(res), pct(res, last))
	}
}
