package sdprogress

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/testenv"
)

// The parser on the real stable-diffusion.cpp's output of this run, on this machine (the
// captures in testdata were made on another CPU: speeds, units and interleavings differ). Every
// step bar is a step with a speed in it/s or s/it, every weight bar a load in MB/s or GB/s, every
// other stdout line a log line; the tracker sees each stage in order and every step.
func TestParserOnLiveRealOutput(t *testing.T) {
	sd := testenv.RequireRealSD(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(sd.CLI, "-m", sd.Model, "-p", "a red fox", "-W", "128", "-H", "128", "--steps", "5", "-s", "3", "-t", "1", "-o", filepath.Join(dir, "x.png"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sd-cli: %v\n%s", err, stderr.String())
	}
	evs := parseAll(stdout.Bytes(), 97) // odd chunks: bars split across reads
	var steps []int
	loads := 0
	for _, ev := range evs {
		switch ev.Kind {
		case KindStepBar:
			if ev.Unit != "it/s" && ev.Unit != "s/it" {
				t.Errorf("step bar unit %q: %q", ev.Unit, ev.Text)
			}
			if len(steps) == 0 || steps[len(steps)-1] != ev.Current {
				steps = append(steps, ev.Current)
			}
		case KindLoadBar:
			loads++
			if ev.Unit != "MB/s" && ev.Unit != "GB/s" && ev.Unit != "KB/s" && ev.Unit != "B/s" {
				t.Errorf("load bar unit %q: %q", ev.Unit, ev.Text)
			}
		case KindText:
			if strings.TrimSpace(ev.Text) != "" {
				t.Errorf("unparsed stdout line %q", ev.Text)
			}
		}
	}
	if fmt.Sprint(steps) != "[1 2 3 4 5]" || loads < 3 {
		t.Fatalf("steps %v, %d load bars", steps, loads)
	}
	r, _ := replayJob(t, evs, Plan{Width: 128, Height: 128, Steps: 5, Images: 1}, time.Unix(1000, 0))
	if fmt.Sprint(r.stages) != "[loading encoding sampling decoding done]" {
		t.Errorf("stages %v", r.stages)
	}
}

// A truncated model: the real engine reports it on stderr as ERROR lines (and aborts); the
// parser reads each as an error-level log line.
func TestParserOnLiveTruncatedModelOutput(t *testing.T) {
	sd := testenv.RequireRealSD(t)
	dir := t.TempDir()
	b, err := os.ReadFile(sd.Model)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.gguf")
	if err := os.WriteFile(cut, b[:100_000], 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(sd.CLI, "-m", cut, "-p", "x", "-W", "64", "-H", "64", "--steps", "1", "-o", filepath.Join(dir, "x.png"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	cmd.Env = append(os.Environ(), "GGML_NO_BACKTRACE=1")
	if err := cmd.Run(); err == nil {
		t.Fatal("sd-cli accepted a truncated model")
	}
	var errs []string
	for _, ev := range parseAll(stderr.Bytes(), 64) {
		if ev.Kind == KindLog && ev.Level == LevelError {
			errs = append(errs, ev.Message)
		}
	}
	if len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), "read tensor data failed") {
		t.Fatalf("error lines %q\nstderr:\n%s", errs, stderr.String())
	}
}
