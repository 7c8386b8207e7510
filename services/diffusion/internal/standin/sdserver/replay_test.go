package sdserver

import (
	"fmt"
	"regexp"
	"syscall"
	"testing"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdcapture"
)

// TestServerReplaysCaptures sends every captured HTTP exchange of the main sd-server run, in the
// captured order, to the stand-in, and compares status, the headers that matter and the JSON
// (times, job-id time parts and image bytes masked; image sizes and PNG parameters kept). Then
// it compares the whole stdout of the run with the captured one.
//
// The 12th generation, the long job that the capture's SIGTERM interrupted after its first
// step, is made to hang after that step, so the run ends exactly where the capture does.
func TestServerReplaysCaptures(t *testing.T) {
	p := start(t, modelDir(t), []string{"SDSTANDIN_STEP_MS=60", "SDSTANDIN_FAIL=hang", "SDSTANDIN_FAIL_JOB=12", "SDSTANDIN_FAIL_STEP=2"},
		"-m", "tinysd.gguf", "--listen-port", "0")
	ids := map[string]string{} // counter part of a captured id -> our id
	ourID := func(captured string) string {
		m := jobID.FindStringSubmatch(captured)
		if m == nil {
			return captured
		}
		if id, ok := ids[m[1]]; ok {
			return id
		}
		return captured
	}
	send := func(name string) response {
		t.Helper()
		ex := loadExchange(t, name)
		path := jobID.ReplaceAllStringFunc(ex.path, ourID)
		got := p.do(t, ex.method, path, ex.body)
		check(t, ex, got)
		if got.status == 202 {
			id := decode(t, got.body)["id"].(string)
			ids[jobID.FindStringSubmatch(id)[1]] = id
		}
		return got
	}
	idOf := func(counter int) string { return ids[fmt.Sprintf("%08x", counter)] }

	for _, n := range []string{"01-get-root", "02-get-health", "03-get-v1-models", "04-get-capabilities",
		"05-get-sdapi-samplers", "06-get-sdapi-schedulers", "07-get-sdapi-sd-models", "08-get-sdapi-options",
		"09-get-sdapi-loras", "10-get-sdapi-upscalers", "11-get-unknown-path", "12-get-job-unknown",
		"13-options-preflight", "14-cancel-unknown", "15-img-gen-small-submit"} {
		send(n)
	}
	// 16, 17: the small job as it generates and once completed.
	small := idOf(0)
	for _, c := range []struct{ file, status string }{{"16-job-small-generating", "generating"}, {"17-job-small-completed", "completed"}} {
		v := p.waitStatus(t, small, c.status)
		got, want := canonical(walk(t, "", v, true)), canonical(normalize(t, readRef(t, "server/"+c.file+".json"), true))
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.file, clip(got), clip(want))
		}
	}
	send("18-cancel-completed")
	for _, n := range []string{"19-img-gen-big-submit", "20-img-gen-q1-submit", "21-img-gen-q2-submit"} {
		send(n)
	}
	p.waitStatus(t, idOf(1), "generating")
	for _, n := range []string{"22-job-big-generating", "23-job-q1-queued", "24-job-q2-queued", "25-cancel-generating",
		"26-cancel-queued", "27-job-q1-after-cancel", "28-job-q2-moved-up", "29-cancel-cancelled-again",
		"30-busy-get-capabilities", "31-busy-get-v1-models"} {
		send(n)
	}
	if v := p.waitStatus(t, idOf(1), "generating", "completed"); v["status"] != "generating" {
		t.Fatal("the big job finished before 22-31 were sent: the machine is too slow for 40 steps of 60 ms")
	}
	p.waitStatus(t, idOf(1), "completed")
	send("32-job-big-completed")
	for _, n := range []string{"33-img-gen-empty-body", "34-img-gen-invalid-json", "35-img-gen-steps0",
		"36-img-gen-bad-format", "37-img-gen-bad-sampler", "38-img-gen-width60", "39-img-gen-no-prompt"} {
		send(n)
	}
	for counter := 4; counter <= 7; counter++ {
		v := p.waitStatus(t, idOf(counter), "completed")
		img := v["result"].(map[string]any)["images"].([]any)[0].(map[string]any)["b64_json"].(string)
		if d := describePNG(t, img, false); d != "PNG 64x64" {
			t.Errorf("job %d: %s, want PNG 64x64 (server/png-sha256.txt)", counter, d)
		}
	}
	for _, n := range []string{"40-openai-generations", "41-openai-no-prompt", "42-openai-empty-body",
		"43-openai-invalid-json", "44-openai-bad-format", "45-img-gen-busy-submit"} {
		send(n)
	}
	p.waitStatus(t, idOf(8), "generating")
	send("46-openai-while-async-generating") // waits for the model lock
	send("47-job-busy-after-openai")
	send("48-sdapi-txt2img")

	// Queue full: one long job generating, 63 more accepted, the next one refused.
	send("49-queuefull-long-submit")
	p.waitStatus(t, idOf(9), "generating")
	small64 := []byte(`{"prompt": "a red fox", "width": 64, "height": 64, "seed": 42, "sample_params": {"sample_steps": 2}}`)
	for i := 0; i < 63; i++ {
		r := p.do(t, "POST", "/sdcpp/v1/img_gen", small64)
		if r.status != 202 {
			t.Fatalf("extra job %d: %d %s", i, r.status, r.body)
		}
		id := decode(t, r.body)["id"].(string)
		ids[jobID.FindStringSubmatch(id)[1]] = id
	}
	for _, n := range []string{"50-queuefull-429", "51-queuefull-last-queued-job", "52-queuefull-openai-while-full",
		"53-sigterm-job-state-before"} {
		send(n)
	}
	for counter := 10; counter <= 0x48; counter++ {
		if r := p.do(t, "POST", "/sdcpp/v1/jobs/"+idOf(counter)+"/cancel", nil); r.status != 200 {
			t.Errorf("cancel queued job %d: %d", counter, r.status)
		}
	}
	p.waitOutput(t, regexp.MustCompile(`\| 1/60 - [0-9.]+it/s\x1b\[K$`))
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if sig := p.signalled(t); sig != syscall.SIGTERM {
		t.Errorf("killed by %v, want SIGTERM", sig)
	}
	compareStdout(t, p.stdout.Bytes(), readRef(t, "server/server.stdout"))
	if s := p.stderr.Bytes(); len(s) != 0 {
		t.Errorf("stderr not empty: %q", s)
	}
}

var portRE = regexp.MustCompile(`(listening on: http://127\.0\.0\.1:)\d+`)

// compareStdout compares the run's stdout with the capture: the same sequence of log lines and
// bar updates, ending in the middle of the long job's bar line.
func compareStdout(t *testing.T, got, want []byte) {
	t.Helper()
	gt, err := sdcapture.Tokens(portRE.ReplaceAll(got, []byte("${1}#")), sdcapture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := sdcapture.Tokens(portRE.ReplaceAll(want, []byte("${1}#")), sdcapture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := sdcapture.Diff(gt, wt); d != "" {
		t.Errorf("stdout differs from server.stdout:\n%s", d)
	}
}
