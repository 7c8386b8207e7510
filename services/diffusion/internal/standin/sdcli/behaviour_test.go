package sdcli

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdcapture"
)

func TestHelpVersionAndArgv0(t *testing.T) {
	dir := t.TempDir()
	help := readRef(t, "help/sd-cli.help.stdout")
	for _, flag := range []string{"-h", "--help"} {
		r := runCLI(t, dir, nil, flag)
		if r.rc != 0 || !bytes.Equal(r.stdout, help) || len(r.stderr) != 0 {
			t.Errorf("%s: rc %d, stdout %d bytes, stderr %q", flag, r.rc, len(r.stdout), r.stderr)
		}
	}
	r := runCLI(t, dir, nil, "--version")
	if want := readRef(t, "help/sd-cli.version.stdout"); r.rc != 0 || !bytes.Equal(r.stdout, want) {
		t.Errorf("--version: rc %d, %q", r.rc, r.stdout)
	}
	cmd := command(dir, nil, "--foo")
	cmd.Args[0] = "/opt/sd/bin/sd-cli"
	out, _ := cmd.Output()
	if !bytes.Contains(out, []byte("\nUsage: /opt/sd/bin/sd-cli [options]\n")) {
		t.Errorf("usage line does not use argv[0]: %q", out[:min(len(out), 120)])
	}
}

// sd-cli has no signal handler: SIGTERM ends it mid-line, without a PNG, killed by the signal
// (captures sigTERM_py.*).
func TestSIGTERMKillsMidLine(t *testing.T) {
	dir := workdir(t)
	out := filepath.Join(dir, "out.png")
	cmd := command(dir, []string{"SDSTANDIN_STEP_MS=20"}, with(replace(replace(replace(gen64, "-W", "512"), "-H", "512"), "--steps", "30"), "-o", out)...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for !bytes.Contains(got.Bytes(), []byte(" 3/30 - ")) {
		n, err := pipe.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stdout ended before step 3: %v", err)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(pipe)
	got.Write(rest)
	err = cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("not killed by SIGTERM: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a PNG was written")
	}
	toks, err := sdcapture.Tokens(got.Bytes(), sdcapture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if toks[len(toks)-1] != "NO NEWLINE" {
		t.Errorf("stdout ends with a complete line: %q", toks[len(toks)-1])
	}
	want, _ := sdcapture.Tokens(readRef(t, "cli/sigTERM_py.stdout"), sdcapture.Options{})
	// Up to the bar of step 3 the output is the capture's (the signal may land a step later).
	n := len(want) - 1
	if d := sdcapture.Diff(toks[:min(n, len(toks))], want[:n]); d != "" {
		t.Errorf("output before the signal differs from the capture:\n%s", d)
	}
}

func TestFailureInjection(t *testing.T) {
	args := with(replace(gen64, "--steps", "4"), "-o", "out.png")
	for _, c := range []struct {
		env        []string
		rc         int
		stderr     string // regexp
		lastStep   int    // last sampling bar printed
		png        bool
		lastStdout string
	}{
		{[]string{"SDSTANDIN_FAIL=error"}, 1, `^\[ERROR\] ggml_extend.hpp:2117 - unet compute failed\n\[ERROR\] stable-diffusion.cpp:3312 - sampling failed at step 2\n\[ERROR\] main.cpp:542  - generate failed\n$`, 1, false, ""},
		{[]string{"SDSTANDIN_FAIL=error", "SDSTANDIN_FAIL_STEP=4"}, 1, `sampling failed at step 4\n`, 3, false, ""},
		{[]string{"SDSTANDIN_FAIL=segv", "SDSTANDIN_FAIL_STEP=3"}, 139, `^$`, 2, false, ""},
		{[]string{"SDSTANDIN_FAIL=oom"}, 1, `^\[ERROR\] ggml_extend.hpp:75   - ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size \d+\n\[ERROR\] ggml_extend.hpp:2199 - unet: failed to allocate the compute buffer\n`, 1, false, ""},
		{[]string{"SDSTANDIN_FAIL=oom-cuda", "SDSTANDIN_FAIL_STEP=decode"}, 1, `cudaMalloc failed: out of memory\n.*taesd: failed to allocate the compute buffer\n.*decode_first_stage failed for latent 1\n.*generate failed\n$`, 4, false, ""},
		{[]string{"SDSTANDIN_FAIL=noout"}, 0, `^$`, 4, false, "[INFO ] main.cpp:562  - 0/1 images saved\n"},
		{[]string{"SDSTANDIN_FAIL=error", "SDSTANDIN_FAIL_JOB=2"}, 0, `^$`, 4, true, "[INFO ] main.cpp:562  - 1/1 images saved\n"},
	} {
		t.Run(strings.Join(c.env, ","), func(t *testing.T) {
			t.Parallel()
			dir := workdir(t)
			r := runCLI(t, dir, c.env, args...)
			if r.rc != c.rc {
				t.Errorf("rc %d, want %d", r.rc, c.rc)
			}
			if !regexp.MustCompile(`(?s)` + c.stderr).Match(r.stderr) {
				t.Errorf("stderr %q does not match %s", r.stderr, c.stderr)
			}
			steps := regexp.MustCompile(`\| (\d)/4 - `).FindAllSubmatch(r.stdout, -1)
			if len(steps) == 0 || string(steps[len(steps)-1][1]) != strconv.Itoa(c.lastStep) {
				t.Errorf("last step bar %q, want %d", steps, c.lastStep)
			}
			_, err := os.Stat(filepath.Join(dir, "out.png"))
			if (err == nil) != c.png {
				t.Errorf("png written: %v, want %v", err == nil, c.png)
			}
			if c.lastStdout != "" && !bytes.HasSuffix(r.stdout, []byte(c.lastStdout)) {
				t.Errorf("stdout ends %q", r.stdout[max(0, len(r.stdout)-120):])
			}
		})
	}
}

// A hang stops all output in the middle of sampling; the process stays alive until killed.
func TestFailureHang(t *testing.T) {
	dir := workdir(t)
	cmd := command(dir, []string{"SDSTANDIN_FAIL=hang", "SDSTANDIN_FAIL_STEP=2"}, with(replace(gen64, "--steps", "4"), "-o", "out.png")...)
	pipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(pipe)
	var got bytes.Buffer
	for !regexp.MustCompile(`\| 1/4 - [0-9.]+it/s\x1b\[K$`).Match(got.Bytes()) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		got.WriteByte(b)
	}
	more := make(chan int, 1)
	go func() { n, _ := r.Read(make([]byte, 1024)); more <- n }()
	select {
	case <-time.After(300 * time.Millisecond): // 300 steps' worth of silence
	case <-more:
		t.Fatal("output continued after the hang")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("hung stand-in did not die by SIGTERM: %v", cmd.ProcessState)
	}
}

func TestStepTimeAndRandomSeed(t *testing.T) {
	dir := workdir(t)
	r := runCLI(t, dir, []string{"SDSTANDIN_STEP_MS=60"}, with(replace(replace(gen64, "--steps", "3"), "-s", "-1"), "-o", "r.png")...)
	if r.rc != 0 {
		t.Fatalf("rc %d: %s", r.rc, r.stderr)
	}
	for _, m := range regexp.MustCompile(`\| \d/3 - ([0-9.]+)it/s`).FindAllSubmatch(r.stdout, -1) {
		if f, _ := strconv.ParseFloat(string(m[1]), 64); f > 1000.0/60 {
			t.Errorf("a 60 ms step reported %s it/s", m[1])
		}
	}
	m := regexp.MustCompile(`generating image: 1/1 - seed (\d+)\n`).FindSubmatch(r.stdout)
	if m == nil || string(m[1]) == "42" {
		t.Fatalf("no random seed printed: %q", m)
	}
	_, params := pngOf(t, filepath.Join(dir, "r.png"))
	if !strings.Contains(params, "Seed: "+string(m[1])+",") {
		t.Errorf("metadata does not carry the drawn seed %s: %q", m[1], params)
	}
}

func TestBatchOutputNames(t *testing.T) {
	dir := workdir(t)
	r := runCLI(t, dir, nil, with(gen64, "-b", "3", "-o", "out/img_%03d.png")...)
	if r.rc != 0 {
		t.Fatalf("rc %d: %s", r.rc, r.stderr)
	}
	for i := 0; i < 3; i++ {
		name := filepath.Join(dir, "out", "img_00"+strconv.Itoa(i)+".png")
		size, params := pngOf(t, name)
		if size != [2]int{64, 64} || !strings.Contains(params, "Seed: "+strconv.Itoa(42+i)+",") {
			t.Errorf("%s: %v %q", name, size, params)
		}
	}
	if !bytes.HasSuffix(r.stdout, []byte("3/3 images saved\n")) {
		t.Errorf("stdout ends %q", r.stdout[len(r.stdout)-60:])
	}
}

func TestBadEnvironment(t *testing.T) {
	r := runCLI(t, t.TempDir(), []string{"SDSTANDIN_FAIL=explode"}, gen64...)
	if r.rc != 2 || !bytes.Contains(r.stderr, []byte("SDSTANDIN_FAIL")) {
		t.Errorf("rc %d stderr %q", r.rc, r.stderr)
	}
}
