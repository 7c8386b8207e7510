package sdserver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image/jpeg"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdcapture"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Connections are refused until the model header is read; then `listening on` (server2.stdout).
func TestStartupRefusesUntilListening(t *testing.T) {
	port := freePort(t)
	dir := modelDir(t)
	cmd := command(dir, []string{"SDSTANDIN_STAGE_MS=400"}, "-m", "tinysd.gguf", "--listen-port", strconv.Itoa(port))
	out := &syncBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err == nil {
		conn.Close()
		t.Fatal("connected while the model header was being read")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v, want connection refused", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !listening.Match(out.Bytes()) {
		if time.Now().After(deadline) {
			t.Fatal("never listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("dial after listening: %v", err)
	}
	conn.Close()
	want := portRE.ReplaceAll(readRef(t, "server/server2.stdout"), []byte("${1}"+strconv.Itoa(port)))
	if got := out.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("start-up output:\n got %q\nwant %q", got, want)
	}
}

// SO_REUSEPORT: a second server on the same port starts normally (server3-port-in-use).
func TestSecondServerOnSamePortStarts(t *testing.T) {
	dir := modelDir(t)
	a := start(t, dir, nil, "-m", "tinysd.gguf", "--listen-port", "0")
	b := start(t, dir, nil, "-m", "tinysd.gguf", "--listen-port", strconv.Itoa(a.port))
	if b.port != a.port {
		t.Fatalf("second server on %d, want %d", b.port, a.port)
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case <-b.done:
		t.Fatalf("second server exited: %v", b.cmd.ProcessState)
	default:
	}
	if r := a.do(t, "GET", "/v1/models", nil); r.status != 200 {
		t.Errorf("shared port answers %d", r.status)
	}
	want := portRE.ReplaceAll(readRef(t, "server/server3-port-in-use.stdout"), []byte("${1}"+strconv.Itoa(a.port)))
	if !bytes.Equal(b.stdout.Bytes(), want) {
		t.Errorf("second server output %q", b.stdout.Bytes())
	}
}

func runToEnd(t *testing.T, dir string, args ...string) (stdout, stderr []byte, rc int) {
	t.Helper()
	cmd := command(dir, nil, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes(), cmd.ProcessState.ExitCode()
}

func TestMissingModelAndBadFlag(t *testing.T) {
	dir := t.TempDir()
	out, errb, rc := runToEnd(t, dir, "-m", "does-not-exist.gguf", "--listen-port", "0")
	if rc != 1 || !bytes.Equal(out, readRef(t, "server/server4-missing-model.stdout")) || !bytes.Equal(errb, readRef(t, "server/server4-missing-model.stderr")) {
		t.Errorf("missing model: rc %d\nstdout %q\nstderr %q", rc, out, errb)
	}
	out, errb, rc = runToEnd(t, dir, "-m", "tinysd.gguf", "--foo")
	if rc != 1 || !bytes.Equal(out, readRef(t, "server/server5-bad-flag.stdout")) || !bytes.Equal(errb, readRef(t, "server/server5-bad-flag.stderr")) {
		t.Errorf("--foo: rc %d\nstdout %d bytes\nstderr %q", rc, len(out), errb)
	}
	out, _, rc = runToEnd(t, dir, "--help")
	if rc != 0 || !bytes.Equal(out, readRef(t, "help/sd-server.help.stdout")) {
		t.Errorf("--help: rc %d, %d bytes", rc, len(out))
	}
	out, _, rc = runToEnd(t, dir, "--version")
	if rc != 0 || !bytes.Equal(out, readRef(t, "help/sd-server.version.stdout")) {
		t.Errorf("--version: rc %d, %q", rc, out)
	}
}

// No signal handler: SIGTERM and SIGINT kill it at once, idle or generating.
func TestSignalsKillAtOnce(t *testing.T) {
	dir := modelDir(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		p := start(t, dir, nil, "-m", "tinysd.gguf", "--listen-port", "0")
		_ = p.cmd.Process.Signal(sig)
		if got := p.signalled(t); got != sig {
			t.Errorf("idle, %v: killed by %v", sig, got)
		}
	}
	p := start(t, dir, []string{"SDSTANDIN_STEP_MS=50"}, "-m", "tinysd.gguf", "--listen-port", "0")
	r := p.do(t, "POST", "/sdcpp/v1/img_gen", []byte(`{"prompt":"x","width":64,"height":64,"sample_params":{"sample_steps":50}}`))
	p.waitStatus(t, decode(t, r.body)["id"].(string), "generating")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.signalled(t); got != syscall.SIGTERM {
		t.Errorf("generating: killed by %v", got)
	}
}

func submit(t *testing.T, p *proc, body string) string {
	t.Helper()
	r := p.do(t, "POST", "/sdcpp/v1/img_gen", []byte(body))
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	return decode(t, r.body)["id"].(string)
}

const small = `{"prompt":"a red fox","width":64,"height":64,"seed":42,"sample_params":{"sample_steps":4}}`

func TestFailureInjection(t *testing.T) {
	dir := modelDir(t)
	t.Run("error then success", func(t *testing.T) {
		p := start(t, dir, []string{"SDSTANDIN_FAIL=error", "SDSTANDIN_FAIL_JOB=1"}, "-m", "tinysd.gguf", "--listen-port", "0")
		v := p.waitStatus(t, submit(t, p, small), "failed", "completed")
		e, _ := v["error"].(map[string]any)
		if v["status"] != "failed" || e["code"] != "generation_failed" || e["message"] != "generate_image returned no results" || v["result"] != nil {
			t.Errorf("failed job: %v", v)
		}
		p.waitStderr(t, regexp.MustCompile(`unet compute failed\n`))
		if v := p.waitStatus(t, submit(t, p, small), "failed", "completed"); v["status"] != "completed" {
			t.Errorf("second job: %v", v["status"])
		}
		r := p.do(t, "POST", "/v1/images/generations", []byte(`{"prompt":"x","size":"64x64"}`))
		if r.status != 200 {
			t.Errorf("openai after the failure: %d", r.status)
		}
	})
	t.Run("oom fails the job, openai answers 500", func(t *testing.T) {
		p := start(t, dir, []string{"SDSTANDIN_FAIL=oom", "SDSTANDIN_FAIL_STEP=decode"}, "-m", "tinysd.gguf", "--listen-port", "0")
		r := p.do(t, "POST", "/v1/images/generations", []byte(`{"prompt":"x","size":"64x64"}`))
		if r.status != 500 || decode(t, r.body)["message"] != "generate_image returned no results" {
			t.Errorf("openai: %d %s", r.status, r.body)
		}
		p.waitStderr(t, regexp.MustCompile(`failed to allocate buffer of size \d+\n.*taesd: failed to allocate the compute buffer\n`))
		if v := p.waitStatus(t, submit(t, p, small), "failed", "completed"); v["status"] != "failed" {
			t.Errorf("job: %v", v["status"])
		}
	})
	t.Run("noout completes without images", func(t *testing.T) {
		p := start(t, dir, []string{"SDSTANDIN_FAIL=noout"}, "-m", "tinysd.gguf", "--listen-port", "0")
		v := p.waitStatus(t, submit(t, p, small), "failed", "completed")
		res, _ := v["result"].(map[string]any)
		if imgs, _ := res["images"].([]any); v["status"] != "completed" || imgs == nil || len(imgs) != 0 {
			t.Errorf("job: %v", v)
		}
	})
	t.Run("segv kills the server mid-sampling", func(t *testing.T) {
		p := start(t, dir, []string{"SDSTANDIN_FAIL=segv", "SDSTANDIN_FAIL_STEP=3"}, "-m", "tinysd.gguf", "--listen-port", "0")
		submit(t, p, small)
		if sig := p.signalled(t); sig != syscall.SIGSEGV {
			t.Errorf("killed by %v, want SIGSEGV", sig)
		}
		if !regexp.MustCompile(`\| 2/4 - [0-9.]+it/s\x1b\[K$`).Match(p.stdout.Bytes()) {
			t.Errorf("stdout does not end after step 2: %q", p.stdout.Bytes()[max(0, len(p.stdout.Bytes())-80):])
		}
	})
	t.Run("hang keeps the job generating", func(t *testing.T) {
		p := start(t, dir, []string{"SDSTANDIN_FAIL=hang"}, "-m", "tinysd.gguf", "--listen-port", "0")
		id := submit(t, p, small)
		p.waitOutput(t, regexp.MustCompile(`\| 1/4 - [0-9.]+it/s\x1b\[K$`))
		before := len(p.stdout.Bytes())
		time.Sleep(200 * time.Millisecond) // 200 steps' worth
		if after := len(p.stdout.Bytes()); after != before {
			t.Errorf("output went on: %d -> %d bytes", before, after)
		}
		if v := p.waitStatus(t, id, "generating", "completed", "failed"); v["status"] != "generating" {
			t.Errorf("status %v", v["status"])
		}
		if r := p.do(t, "POST", "/sdcpp/v1/jobs/"+id+"/cancel", nil); r.status != 409 {
			t.Errorf("cancel: %d", r.status)
		}
	})
}

func TestJobExpiryAndIDs(t *testing.T) {
	p := start(t, modelDir(t), []string{"SDSTANDIN_JOB_TTL_S=1"}, "-m", "tinysd.gguf", "--listen-port", "0")
	id := submit(t, p, small)
	if !regexp.MustCompile(`^job_[0-9a-f]{8}_00000000$`).MatchString(id) {
		t.Errorf("id %q", id)
	}
	if id2 := submit(t, p, small); !regexp.MustCompile(`_00000001$`).MatchString(id2) {
		t.Errorf("second id %q", id2)
	}
	p.waitStatus(t, id, "completed")
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := p.do(t, "GET", "/sdcpp/v1/jobs/"+id, nil)
		if r.status == 410 {
			if string(r.body) != `{"error":"job expired"}` {
				t.Errorf("410 body %s", r.body)
			}
			break
		}
		if r.status != 200 || time.Now().After(deadline) {
			t.Fatalf("status %d before expiry", r.status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOutputFormatsAndCORS(t *testing.T) {
	dir := modelDir(t)
	html := filepath.Join(dir, "ui.html")
	_ = os.WriteFile(html, []byte("<html>ui</html>"), 0o644)
	p := start(t, dir, nil, "-m", "tinysd.gguf", "--listen-port", "0", "--serve-html-path", html)
	v := p.waitStatus(t, submit(t, p, `{"prompt":"x","width":128,"height":64,"output_format":"jpeg","output_compression":80,"sample_params":{"sample_steps":2}}`), "completed")
	res := v["result"].(map[string]any)
	data, _ := base64.StdEncoding.DecodeString(res["images"].([]any)[0].(map[string]any)["b64_json"].(string))
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil || res["output_format"] != "jpeg" || img.Bounds().Dx() != 128 || img.Bounds().Dy() != 64 {
		t.Errorf("jpeg result: %v %v", err, res["output_format"])
	}
	if r := p.do(t, "GET", "/", nil); string(r.body) != "<html>ui</html>" {
		t.Errorf("GET / = %q", r.body)
	}
	req := []byte(`{"prompt":"a<b>&c","size":"64x64","n":2}`)
	r := p.do(t, "POST", "/v1/images/generations", req)
	if r.status != 200 || len(decode(t, r.body)["data"].([]any)) != 2 {
		t.Errorf("n=2: %d", r.status)
	}
	toks, err := sdcapture.Tokens(p.stdout.Bytes(), sdcapture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tok := range toks {
		if regexp.MustCompile(`generating image: \d/2 - seed 4[23]$`).MatchString(tok) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("batch of 2 printed %d generating lines", n)
	}
}
