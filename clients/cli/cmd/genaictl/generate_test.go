package main_test

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startDiffusion makes sure the diffusion engine runs with the stack's model: genailab up
// starts it at boot, so the start is normally refused as "already running", which is fine.
func startDiffusion(t *testing.T) {
	t.Helper()
	r := ctl(t, "diffusion", "start", "--model", diffusionModel)
	if r.code != 0 && !strings.Contains(r.stderr, "already running") {
		t.Fatalf("diffusion start: %s", r)
	}
}

// runningLine is what `genaictl diffusion start` prints for the stack's engine and model.
func runningLine() string {
	if sd == nil {
		return "Diffusion engine running: model demo, cli mode (demo stand-in: synthetic images).\n"
	}
	return "Diffusion engine running: model " + diffusionModel + ", cli mode.\n"
}

// engineGolden names the golden file of output that shows the diffusion engine (its model,
// demoEngine, the models in the store): testdata/<name>.golden for the real
// stable-diffusion.cpp, testdata/<name>-demo.golden for the stand-in.
func engineGolden(name string) string {
	if sd == nil {
		return name + "-demo"
	}
	return name
}

func decodePNG(t *testing.T, path string) (w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

func TestDiffusionStartStopStatus(t *testing.T) {
	ctl(t, "diffusion", "stop")
	if r := ok(t, "diffusion", "status"); !regexp.MustCompile(`(?m)^Status:\s+stopped$`).MatchString(r.stdout) {
		t.Errorf("status after stop:\n%s", r.stdout)
	}
	fails(t, 1, "not running", "generate", "a fox", "--steps", "2", "--width", "64", "--height", "64")
	// Without --model the engine starts with the model genailab up started it with at boot
	// (the service's -default-model).
	if r := ok(t, "diffusion", "start"); r.stdout != runningLine() {
		t.Errorf("start without --model: %q, want %q", r.stdout, runningLine())
	}
	ok(t, "diffusion", "stop")
	fails(t, 1, `"no-such-model"`, "diffusion", "start", "--model", "no-such-model")
	r := ok(t, "diffusion", "start", "--model", diffusionModel)
	if r.stdout != runningLine() {
		t.Errorf("start: %q, want %q", r.stdout, runningLine())
	}
	golden(t, engineGolden("diffusion-status"), ok(t, "diffusion", "status", "--json").stdout)
	r = ok(t, "diffusion", "status")
	engine := `(?m)^Engine:\s+demo stand-in`
	if sd != nil {
		engine = `(?m)^Engine:\s+` + regexp.QuoteMeta(sd.CLI) + `$`
	}
	for _, re := range []string{`(?m)^Status:\s+running$`, `(?m)^Model:\s+` + regexp.QuoteMeta(diffusionModel) + `$`, `(?m)^Busy:\s+no$`, engine} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("status lacks %s:\n%s", re, r.stdout)
		}
	}
	fails(t, 1, "already", "diffusion", "start", "--model", diffusionModel)
}

func TestGenerate(t *testing.T) {
	startDiffusion(t)
	cmd := command(t, "generate", "a red fox in the snow", "--width", "64", "--height", "128", "--steps", "3",
		"--seed", "4242", "--sampler", "euler", "--cfg-scale", "5", "--negative", "blurry", "-o", "fox.png")
	r := runCmd(t, cmd, "")
	if r.code != 0 {
		t.Fatalf("generate: %s", r)
	}
	// Plain lines (stdout is not a terminal): the job, the orchestrator's events, one line per stage and step.
	saved := `(?m)^Saved fox\.png: 64x128, seed 4242, \S+\.$`
	if sd == nil {
		saved = `(?m)^Saved fox\.png: 64x128, seed 4242, \S+ \(demo stand-in: a synthetic image\)\.$`
	}
	for _, re := range []string{`(?m)^Job j[0-9a-f]{24}$`, `(?m)^Job queued \(64x128, 3 steps\)\.$`, `(?m)^sampling step 1/3 \(\d+%\)$`,
		`(?m)^done \(100%\)$`, saved} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("generate output lacks %s:\n%s", re, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b") || strings.Contains(r.stdout, "\r") {
		t.Errorf("escape sequences without a terminal: %q", r.stdout)
	}
	if w, h := decodePNG(t, filepath.Join(cmd.Dir, "fox.png")); w != 64 || h != 128 {
		t.Errorf("png %dx%d", w, h)
	}
	jobID := regexp.MustCompile(`Job (j[0-9a-f]{24})`).FindStringSubmatch(r.stdout)[1]

	// The job and its image are kept: jobs get -o writes the same PNG.
	r = ok(t, "jobs", "get", jobID)
	for _, re := range []string{`(?m)^Status:\s+succeeded$`, `(?m)^Image:\s+64x128, seed 4242, 3 steps, cfg 5\.0, euler$`, `(?m)^Negative:\s+blurry$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("jobs get lacks %s:\n%s", re, r.stdout)
		}
	}
	get := command(t, "jobs", "get", jobID, "-o", "again.png")
	if r := runCmd(t, get, ""); r.code != 0 {
		t.Fatal(r)
	}
	a, _ := os.ReadFile(filepath.Join(cmd.Dir, "fox.png"))
	b, _ := os.ReadFile(filepath.Join(get.Dir, "again.png"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("jobs get -o wrote %d bytes, generate %d; want the same PNG", len(b), len(a))
	}
	golden(t, engineGolden("jobs-get"), ok(t, "jobs", "get", jobID, "--json").stdout)
	if r := ok(t, "jobs", "cancel", jobID); r.stdout != "Job "+jobID+": succeeded.\n" {
		t.Errorf("cancelling a finished job: %q", r.stdout)
	}
	fails(t, 1, "no such job", "jobs", "get", "j000000000000000000000000")
	fails(t, 1, "no such job", "jobs", "get", "../etc/passwd")

	// --json: the stream, one document per line: the job id first, the result (without
	// its PNG, which is in the file) last.
	jcmd := command(t, "generate", "a blue fox", "--width", "64", "--height", "64", "--steps", "2", "--seed", "7", "--json")
	r = runCmd(t, jcmd, "")
	if r.code != 0 {
		t.Fatal(r)
	}
	docs := jsonLines(t, r.stdout)
	id, _ := docs[0]["jobId"].(string)
	if id == "" {
		t.Fatalf("first line %v: want the job id", docs[0])
	}
	last, _ := json.Marshal(docs[len(docs)-1])
	golden(t, engineGolden("generate-result"), string(last))
	kinds := map[string]int{}
	for _, d := range docs {
		for k := range d {
			kinds[k]++
		}
	}
	if kinds["progress"] == 0 || kinds["event"] < 3 || kinds["result"] != 1 {
		t.Errorf("stream kinds %v", kinds)
	}
	if w, h := decodePNG(t, filepath.Join(jcmd.Dir, id+".png")); w != 64 || h != 64 {
		t.Errorf("default output %s.png: %dx%d", id, w, h)
	}

	// Bad parameters: the service's message, one line, exit 1, no file.
	bad := command(t, "generate", "x", "--width", "65", "-o", "bad.png")
	r = runCmd(t, bad, "")
	if r.code != 1 {
		t.Fatalf("width 65: %s", r)
	}
	oneLineError(t, r, "width")
	if _, err := os.Stat(filepath.Join(bad.Dir, "bad.png")); err == nil {
		t.Error("a file was written for a refused generation")
	}
}

// TestGenerateInterruptCancelsOnTheServer sends Ctrl-C (SIGINT) to a running generation:
// genaictl cancels the job on the server and exits 130, and the engine is idle again.
func TestGenerateInterruptCancelsOnTheServer(t *testing.T) {
	startDiffusion(t)
	cmd, out, errb := background(t, "generate", "a slow fox", "--width", cancelSize, "--height", cancelSize, "--steps", strconv.Itoa(cancelSteps), "-o", "slow.png")
	sampling := regexp.MustCompile(`(?m)^sampling step [1-9]\d*/` + strconv.Itoa(cancelSteps) + ` `)
	waitFor(t, 2*time.Minute, "a sampling step", func() bool { return sampling.MatchString(out.String()) })
	code := interrupt(t, cmd)
	m := regexp.MustCompile(`^genaictl: interrupted; job (j[0-9a-f]{24}) cancelled on the server\n$`).FindStringSubmatch(errb.String())
	if code != 130 || m == nil {
		t.Fatalf("exit %d, stderr %q\n%s", code, errb.String(), out.String())
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "slow.png")); err == nil {
		t.Error("an interrupted generation wrote its file")
	}
	// The server shows no generation in progress: the job is cancelled and the engine idle.
	r := ok(t, "jobs", "get", m[1], "--json")
	var job struct {
		Job struct {
			Status   string `json:"status"`
			Progress struct {
				Step int `json:"step"`
			} `json:"progress"`
		} `json:"job"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || job.Job.Status != "JOB_STATUS_CANCELLED" || job.Job.Progress.Step >= cancelSteps {
		t.Errorf("job after Ctrl-C: %v %+v", err, job)
	}
	waitFor(t, 10*time.Second, "an idle diffusion engine", func() bool {
		r := ok(t, "diffusion", "status", "--json")
		return strings.Contains(r.stdout, `"busy": false`)
	})
	if r := ok(t, "resources", "watch", "-n", "1"); !strings.Contains(r.stdout, "orchestrator ok,idle") {
		t.Errorf("orchestrator still busy: %s", r.stdout)
	}
}

// TestJobsListAndCancel queues a job behind a running one, lists both, and cancels them.
func TestJobsListAndCancel(t *testing.T) {
	startDiffusion(t)
	run1, out1, _ := background(t, "generate", "first", "--width", cancelSize, "--height", cancelSize, "--steps", strconv.Itoa(cancelSteps), "-o", "1.png")
	waitFor(t, 2*time.Minute, "the first job sampling", func() bool { return strings.Contains(out1.String(), "sampling step") })
	run2, out2, errb2 := background(t, "generate", "second", "--width", "64", "--height", "64", "--steps", "2", "-o", "2.png")
	waitFor(t, 30*time.Second, "the second job queued", func() bool { return strings.Contains(out2.String(), "queued: position 1 of 1") })
	id1 := regexp.MustCompile(`Job (j[0-9a-f]{24})`).FindStringSubmatch(out1.String())[1]
	id2 := regexp.MustCompile(`Job (j[0-9a-f]{24})`).FindStringSubmatch(out2.String())[1]

	r := ok(t, "jobs", "list", "--limit", "2")
	// A queued job shows the parameters it will run with, its seed drawn already.
	if !regexp.MustCompile(`(?m)^`+id2+`\s+queued \(#1\)\s+64x64\s+2\s+\d+\s`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^`+id1+`\s+running \(\d+%\)\s+`+cancelSize+`x`+cancelSize+`\s+`+strconv.Itoa(cancelSteps)+`\s`).MatchString(r.stdout) {
		t.Errorf("jobs list:\n%s", r.stdout)
	}
	if r := ok(t, "jobs", "list", "--status", "queued", "--json"); !strings.Contains(r.stdout, id2) || strings.Contains(r.stdout, id1) {
		t.Errorf("--status queued:\n%s", r.stdout)
	}

	// Cancelling the queued job ends its genaictl with the server's message.
	if r := ok(t, "jobs", "cancel", id2); r.stdout != "Job "+id2+": cancelled.\n" {
		t.Errorf("cancel queued: %q", r.stdout)
	}
	if err := run2.Wait(); err == nil || run2.ProcessState.ExitCode() != 1 || !strings.Contains(errb2.String(), "cancel") {
		t.Errorf("the queued job's genaictl: %v, stderr %q", err, errb2.String())
	}
	// Cancelling the running one waits until it has stopped.
	if r := ok(t, "jobs", "cancel", id1); r.stdout != "Job "+id1+": cancelled.\n" {
		t.Errorf("cancel running: %q", r.stdout)
	}
	run1.Wait()
	// The job is cancelled as soon as the orchestrator's stream to the engine ends; the real
	// sd-cli then takes some tens of milliseconds more to exit (the stand-in was gone at once),
	// so the engine may still show that generation for a moment.
	waitFor(t, 10*time.Second, "an idle diffusion engine", func() bool {
		return regexp.MustCompile(`(?m)^Busy:\s+no$`).MatchString(ok(t, "diffusion", "status").stdout)
	})
	golden(t, "jobs-list-cancelled", ok(t, "jobs", "list", "--limit", "2", "--json").stdout, "step", "stagePercent", "message", "nextPageToken", "seed")
}

// TestEvents prints the stored events and follows new ones.
func TestEvents(t *testing.T) {
	startDiffusion(t)
	follow, out, errb := background(t, "events", "-f", "-n", "0", "--type", "job_queued", "--type", "job_finished")
	time.Sleep(300 * time.Millisecond)
	r := ok(t, "generate", "an event fox", "--width", "64", "--height", "64", "--steps", "2")
	id := regexp.MustCompile(`Job (j[0-9a-f]{24})`).FindStringSubmatch(r.stdout)[1]
	waitFor(t, 10*time.Second, "the followed events", func() bool { return strings.Contains(out.String(), "job_finished") })
	if code := interrupt(t, follow); code != 0 || errb.String() != "" {
		t.Errorf("events -f after Ctrl-C: exit %d, stderr %q", code, errb.String())
	}
	want := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  job_queued\s+` + id + `  Job queued \(64x64, 2 steps\)\.\n` +
		`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  job_finished\s+` + id + `  Job finished: 64x64 image, seed \d+\.\n$`)
	if !want.MatchString(out.String()) {
		t.Errorf("followed events:\n%s", out.String())
	}

	r = ok(t, "events", "-n", "4", "--json")
	docs := jsonLines(t, r.stdout)
	if len(docs) != 4 {
		t.Fatalf("events -n 4: %d lines", len(docs))
	}
	prev := 0.0
	for _, d := range docs {
		e := d["event"].(map[string]any)
		var n float64
		json.Unmarshal([]byte(e["id"].(string)), &n)
		if n <= prev || e["type"] == "" {
			t.Errorf("events out of order or untyped: %v", docs)
		}
		prev = n
	}
	if docs[3]["event"].(map[string]any)["type"] != "EVENT_TYPE_JOB_FINISHED" {
		t.Errorf("last event %v", docs[3])
	}
	fails(t, 1, `--type "nope"`, "events", "--type", "nope")
}
