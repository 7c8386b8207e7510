package sdprogress

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The files under testdata/ are copies of the reference captures of the real sd-cli and
// sd-server (../shared/reference/sdcpp): raw stdout bytes and exit codes.

func parseAll(data []byte, chunk int) []Event {
	var p Parser
	var evs []Event
	emit := func(ev Event) { evs = append(evs, ev) }
	for len(data) > 0 {
		n := min(chunk, len(data))
		p.Feed(data[:n], emit)
		data = data[n:]
	}
	p.Flush(emit)
	return evs
}

func captures(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures match %s: %v", pattern, err)
	}
	return files
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func allCaptures(t *testing.T) []string {
	files := captures(t, "cli/*.stdout")
	files = append(files, captures(t, "cli/*.typescript")...)
	return append(files, captures(t, "server/*.stdout")...)
}

// Chunk boundaries must not change what is parsed.
func TestParserChunkingIsInvisible(t *testing.T) {
	for _, f := range allCaptures(t) {
		data := read(t, f)
		whole := parseAll(data, len(data)+1)
		for _, chunk := range []int{1, 2, 3, 7, 64, 4096} {
			if got := parseAll(data, chunk); !reflect.DeepEqual(got, whole) {
				t.Errorf("%s: %d-byte chunks give %d events, whole file %d", f, chunk, len(got), len(whole))
			}
		}
	}
}

// Every line of every capture is accounted for: each newline-terminated log line becomes a log
// event, and every `\r` bar update becomes a bar event.
func TestParserCountsMatchCaptures(t *testing.T) {
	for _, f := range allCaptures(t) {
		data := read(t, f)
		evs := parseAll(data, 4096)
		var logs, bars int
		for _, ev := range evs {
			switch ev.Kind {
			case KindLog:
				logs++
			case KindLoadBar, KindStepBar:
				bars++
			}
		}
		wantBars := bytes.Count(data, []byte("\x1b[K"))
		wantLogs := 0
		for _, l := range strings.FieldsFunc(string(data), func(r rune) bool { return r == '\n' || r == '\r' }) {
			l = ansi.ReplaceAllString(l, "")
			for _, lv := range []string{"[INFO ] ", "[WARN ] ", "[DEBUG] ", "[ERROR] "} {
				if strings.Contains(l, lv) {
					wantLogs++
				}
			}
		}
		if bars != wantBars || logs != wantLogs {
			t.Errorf("%s: %d bars, %d log lines; want %d, %d", f, bars, logs, wantBars, wantLogs)
		}
	}
}

// A bar is delivered when its ESC[K arrives, not when the next `\r` does.
func TestParserEmitsBarWithoutWaitingForNextLine(t *testing.T) {
	var p Parser
	var got []Event
	emit := func(ev Event) { got = append(got, ev) }
	p.Feed([]byte("\r  |=========================>                        | 1/2 - 4.4"), emit)
	if len(got) != 0 {
		t.Fatalf("emitted a partial bar: %+v", got)
	}
	p.Feed([]byte("1it/s\x1b"), emit)
	p.Feed([]byte("["), emit)
	if len(got) != 0 {
		t.Fatalf("emitted before K: %+v", got)
	}
	p.Feed([]byte("K"), emit)
	if len(got) != 1 || got[0].Kind != KindStepBar || got[0].Current != 1 || got[0].Total != 2 {
		t.Fatalf("after ESC[K got %+v", got)
	}
	// A log line is delivered at its newline.
	p.Feed([]byte("\n[INFO ] x.cpp:1    - sampling completed, taking 0.25s"), emit)
	if len(got) != 1 {
		t.Fatalf("log line emitted before its newline: %+v", got[1:])
	}
	p.Feed([]byte("\n"), emit)
	if len(got) != 2 || got[1].Marker != MarkerSamplingCompleted {
		t.Fatalf("got %+v", got)
	}
}

func TestParserBoundsLongLines(t *testing.T) {
	p := Parser{MaxLine: 100}
	var got []Event
	p.Feed(bytes.Repeat([]byte("x"), 250), func(ev Event) { got = append(got, ev) })
	p.Flush(func(ev Event) { got = append(got, ev) })
	if len(got) != 3 || len(got[0].Text) != 100 || len(got[2].Text) != 50 {
		t.Fatalf("got %d events", len(got))
	}
}

// run replays a capture through a Tracker with a synthetic clock: every step bar advances the
// clock by the step time it reports, everything else by 10 ms.
type replay struct {
	progress []Progress
	seeds    []int64
	stages   []Stage
}

func replayJob(t *testing.T, evs []Event, plan Plan, start time.Time) (replay, *Tracker) {
	t.Helper()
	tr := NewTracker(plan, DefaultEstimates(), start)
	now := start
	var r replay
	for _, ev := range evs {
		if d := ev.StepDuration(); d > 0 {
			now = now.Add(time.Duration(d * float64(time.Second)))
		} else {
			now = now.Add(10 * time.Millisecond)
		}
		tr.Observe(ev, now)
		p := tr.Progress(now)
		r.progress = append(r.progress, p)
		if ev.Marker == MarkerGeneratingImage {
			r.seeds = append(r.seeds, ev.Seed)
		}
		if len(r.stages) == 0 || r.stages[len(r.stages)-1] != p.Stage {
			r.stages = append(r.stages, p.Stage)
		}
	}
	return r, tr
}

func checkMonotonic(t *testing.T, name string, ps []Progress) {
	t.Helper()
	for i := 1; i < len(ps); i++ {
		a, b := ps[i-1], ps[i]
		if b.Stage < a.Stage || b.Step < a.Step || b.Percent < a.Percent || b.Elapsed < a.Elapsed {
			t.Errorf("%s: progress went back at event %d: %+v -> %+v", name, i, a, b)
			return
		}
		if b.Percent > 100 || (b.Percent == 100) != (b.Stage == StageDone) {
			t.Errorf("%s: percent %v at stage %v", name, b.Percent, b.Stage)
			return
		}
	}
}

func TestTrackerOnCLICaptures(t *testing.T) {
	// Seeds, steps and sizes from the capture table in the reference README.
	want := map[string]struct {
		seeds  []int64
		steps  int
		images int
	}{
		"gen64": {[]int64{42}, 2, 1}, "gen64b": {[]int64{42}, 2, 1}, "gen64v": {[]int64{42}, 2, 1},
		"gen64color": {[]int64{42}, 2, 1}, "gen64pty": {[]int64{42}, 2, 1},
		"gen128": {[]int64{42}, 20, 1}, "gen64seed7": {[]int64{7}, 2, 1},
		"gen64rand": {[]int64{883337920}, 2, 1}, "gen64batch2": {[]int64{42, 43}, 2, 2},
		"full512": {[]int64{42}, 30, 1}, "sigTERM_py": {[]int64{42}, 30, 1}, "sigINT_py": {[]int64{42}, 30, 1},
	}
	files := append(captures(t, "cli/*.stdout"), captures(t, "cli/*.typescript")...)
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".stdout"), ".typescript")
		rc := "killed" // sig*_py have a .summary instead of an .rc
		if b, err := os.ReadFile(filepath.Join("testdata", "cli", name+".rc")); err == nil {
			rc = strings.TrimSpace(string(b))
		}
		w, ok := want[name]
		if !ok {
			// The f_* cases use gen64's arguments: 2 steps.
			w.steps, w.images = 2, 1
		}
		evs := parseAll(read(t, f), 512)
		if len(evs) == 0 {
			continue // f_nonnumeric_width: stdout empty
		}
		r, tr := replayJob(t, evs, Plan{Width: 64, Height: 64, Steps: w.steps, Images: w.images}, time.Unix(1000, 0))
		checkMonotonic(t, name, r.progress)
		if ok && !reflect.DeepEqual(r.seeds, w.seeds) {
			t.Errorf("%s: seeds %v, want %v", name, r.seeds, w.seeds)
		}
		last := r.progress[len(r.progress)-1]
		generated := bytes.Contains(read(t, f), []byte("generate_image completed"))
		if generated {
			// Loading ends with the text encoder's weight bar; encoding is its own stage.
			wantStages := []Stage{StageLoading, StageEncoding, StageSampling, StageDecoding, StageDone}
			if !reflect.DeepEqual(r.stages, wantStages) {
				t.Errorf("%s: stages %v, want %v", name, r.stages, wantStages)
			}
			if last.Percent != 100 || last.Step != w.steps*w.images || last.TotalSteps != w.steps*w.images {
				t.Errorf("%s: ends at %+v", name, last)
			}
			m := tr.Measurement()
			if m.Load <= 0 || m.Decode <= 0 || (w.steps > 1 && m.Sampling <= 0) {
				t.Errorf("%s: measurement %+v", name, m)
			}
		} else if last.Stage == StageDone || last.Percent >= 100 {
			t.Errorf("%s (rc %s) never completed but ends at %+v", name, rc, last)
		}
		if rc == "0" && !generated {
			t.Errorf("%s: rc 0 without generate_image completed", name)
		}
		if strings.HasPrefix(name, "sig") && (last.Stage != StageSampling || last.Step != 3) {
			t.Errorf("%s: killed after step 3, ends at %+v", name, last)
		}
	}
}

// sd-server prints one stream for many jobs and no per-request lines; a job runs from
// `generate_image WxH` to `generate_image completed`.
func TestTrackerOnServerCaptures(t *testing.T) {
	for _, f := range captures(t, "server/*.stdout") {
		evs := parseAll(read(t, f), 1024)
		var jobs [][]Event
		for _, ev := range evs {
			if ev.Marker == MarkerGenerateStart {
				jobs = append(jobs, nil)
			}
			if len(jobs) > 0 {
				jobs[len(jobs)-1] = append(jobs[len(jobs)-1], ev)
			}
		}
		var listening bool
		for _, ev := range evs {
			listening = listening || ev.Marker == MarkerListening && strings.HasPrefix(ev.Value, "http://127.0.0.1:")
		}
		name := filepath.Base(f)
		switch name {
		case "server.stdout":
			if len(jobs) < 10 {
				t.Fatalf("%s: %d jobs", name, len(jobs))
			}
		case "server2.stdout", "server3-port-in-use.stdout", "server6-sigint.stdout":
			if !listening || len(jobs) != 0 {
				t.Errorf("%s: listening %v, %d jobs", name, listening, len(jobs))
			}
		}
		for i, job := range jobs {
			r, _ := replayJob(t, job, Plan{Width: job[0].Width, Height: job[0].Height, Steps: 0}, time.Unix(2000, 0))
			jobName := fmt.Sprintf("%s#%d", name, i)
			checkMonotonic(t, jobName, r.progress)
			last := r.progress[len(r.progress)-1]
			if len(r.seeds) != 1 {
				t.Errorf("%s: seeds %v", jobName, r.seeds)
			}
			if i < len(jobs)-1 {
				if last.Percent != 100 || last.Step != last.TotalSteps || last.TotalSteps == 0 {
					t.Errorf("%s: ends at %+v", jobName, last)
				}
			} else if last.Stage != StageSampling || last.Step != 1 || last.TotalSteps != 60 {
				// The main server was killed during the first step of a 60-step job.
				t.Errorf("%s: the killed job ends at %+v", jobName, last)
			}
		}
	}
}
