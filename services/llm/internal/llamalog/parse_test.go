package llamalog

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Line
	}{
		{"0.00.006.218 I srv  llama_server: initializing ...\n",
			Line{Prefixed: true, Offset: 6218 * time.Microsecond, Level: LevelInfo, Module: "srv", Func: "llama_server", Message: "initializing ..."}},
		{"0.00.014.573 E gguf_init_from_file: failed to open GGUF file '/m.gguf' (No such file or directory)",
			Line{Prefixed: true, Offset: 14573 * time.Microsecond, Level: LevelError, Func: "gguf_init_from_file", Message: "failed to open GGUF file '/m.gguf' (No such file or directory)"}},
		{"0.00.016.841 E srv         start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 40135",
			Line{Prefixed: true, Offset: 16841 * time.Microsecond, Level: LevelError, Module: "srv", Func: "start", Message: "couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 40135"}},
		{"0.00.182.913 I srv    operator(): operator(): cleaning up before exit...",
			Line{Prefixed: true, Offset: 182913 * time.Microsecond, Level: LevelInfo, Module: "srv", Func: "operator()", Message: "operator(): cleaning up before exit..."}},
		{"0.00.167.339 I slot get_availabl: id  0 | task -1 | selected slot by LRU, n_tokens = 0, t_last = -1",
			Line{Prefixed: true, Offset: 167339 * time.Microsecond, Level: LevelInfo, Module: "slot", Func: "get_availabl", Message: "id  0 | task -1 | selected slot by LRU, n_tokens = 0, t_last = -1"}},
		{"0.00.031.610 W srv  llama_server: security: no API key is set",
			Line{Prefixed: true, Offset: 31610 * time.Microsecond, Level: LevelWarn, Module: "srv", Func: "llama_server", Message: "security: no API key is set"}},
		{"0.00.041.047 I cmn          init: llama threadpool init, n_threads = 2",
			Line{Prefixed: true, Offset: 41047 * time.Microsecond, Level: LevelInfo, Module: "cmn", Func: "init", Message: "llama threadpool init, n_threads = 2"}},
		// Minutes are not zero-padded and can have several digits; debug level.
		{"123.59.999.001 D srv  update_slots: all slots are idle",
			Line{Prefixed: true, Offset: 123*time.Minute + 59*time.Second + 999*time.Millisecond + time.Microsecond, Level: LevelDebug, Module: "srv", Func: "update_slots", Message: "all slots are idle"}},
		// A module-like first word without a function after it is message text.
		{"0.00.000.001 I the model is ready",
			Line{Prefixed: true, Offset: time.Microsecond, Level: LevelInfo, Message: "the model is ready"}},
		{"0.00.000.001 I loaded: yes\r\n",
			Line{Prefixed: true, Offset: time.Microsecond, Level: LevelInfo, Func: "loaded", Message: "yes"}},
		{"0.00.000.001 E",
			Line{Prefixed: true, Offset: time.Microsecond, Level: LevelError}},
		{"0.00.000.001 I ",
			Line{Prefixed: true, Offset: time.Microsecond, Level: LevelInfo}},
		{"0.00.081.493 I llama_model_loader: - kv   0:                       general.architecture str              = llama",
			Line{Prefixed: true, Offset: 81493 * time.Microsecond, Level: LevelInfo, Func: "llama_model_loader", Message: "- kv   0:                       general.architecture str              = llama"}},
		// Not prefixes.
		{"Received second interrupt, terminating immediately.", Line{Message: "Received second interrupt, terminating immediately."}},
		{"<|im_start|>user", Line{Message: "<|im_start|>user"}},
		{"", Line{}},
		{"'", Line{Message: "'"}},
		{"0.0.006.218 I srv  x: y", Line{Message: "0.0.006.218 I srv  x: y"}},             // seconds need 2 digits
		{"0.00.006.218 X srv  x: y", Line{Message: "0.00.006.218 X srv  x: y"}},           // unknown level
		{"0.00.006.218 II srv x: y", Line{Message: "0.00.006.218 II srv x: y"}},           // level is one letter
		{"0.00.006.218I srv x: y", Line{Message: "0.00.006.218I srv x: y"}},               // space after timestamp
		{"0.00.006 I srv x: y", Line{Message: "0.00.006 I srv x: y"}},                     // too few fields
		{"99999999999.00.006.218 I x: y", Line{Message: "99999999999.00.006.218 I x: y"}}, // absurd minutes
	} {
		if got := Parse(tc.in); got != tc.want {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseRandomOutputBytes(t *testing.T) {
	// Random-weight models produce U+FFFD, control characters and invalid UTF-8; the parser keeps them as
	// message bytes and never fails.
	in := "0.00.001.000 I srv  log_server_r: request: \x00\x07\xff\xfe\ufffd text\x1b[31m"
	l := Parse(in)
	if !l.Prefixed || l.Module != "srv" || l.Func != "log_server_r" || l.Message != "request: \x00\x07\xff\xfe\ufffd text\x1b[31m" {
		t.Fatalf("got %+v", l)
	}
	if utf8.ValidString(l.Message) {
		t.Fatal("test input should carry invalid UTF-8 through unchanged")
	}
}

func TestParserContinuationLines(t *testing.T) {
	var p Parser
	if l := p.Parse("orphan"); l.Level != LevelNone || l.Continuation {
		t.Fatalf("line before any prefix: %+v", l)
	}
	p.Parse("0.00.220.803 W srv          init: init: chat template, example_format: '<|im_start|>system")
	l := p.Parse("You are a helpful assistant<|im_end|>")
	if l.Level != LevelWarn || !l.Continuation || l.Prefixed || l.Message != "You are a helpful assistant<|im_end|>" {
		t.Fatalf("continuation: %+v", l)
	}
	if l := p.Parse("0.00.220.996 I srv          init: init: chat template, thinking = 0"); l.Continuation || l.Level != LevelInfo {
		t.Fatalf("next prefixed line: %+v", l)
	}
}

// readFixture parses a transcript of the real binary.
func readFixture(t *testing.T, name string) []Line {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p Parser
	var lines []Line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, p.Parse(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func events(lines []Line) []Event {
	var evs []Event
	for _, l := range lines {
		if ev, _ := Classify(l); ev != EventNone {
			evs = append(evs, ev)
		}
	}
	return evs
}

func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		file   string
		events []Event
		cause  string // substring; "" means no error lines
	}{
		{"start_ok.log", []Event{EventLoadingModel, EventModelLoaded, EventListening, EventShuttingDown},
			"send_error: task id = 200, error: request (2452 tokens) exceeds the available context size (256 tokens)"},
		{"start_verbose.log", []Event{EventLoadingModel, EventModelLoaded, EventListening, EventShuttingDown}, ""},
		{"start_big_model.log", []Event{EventLoadingModel, EventModelLoaded, EventListening}, ""},
		{"missing_file.log", []Event{EventLoadingModel, EventShuttingDown, EventModelLoadFailed},
			"exiting due to model loading error: gguf_init_from_file: failed to open GGUF file '/tmp/models/missing.gguf' (No such file or directory)"},
		{"empty_file.log", []Event{EventLoadingModel, EventShuttingDown, EventModelLoadFailed},
			"exiting due to model loading error: gguf_init_from_reader: failed to read magic"},
		{"garbage_file.log", []Event{EventLoadingModel, EventShuttingDown, EventModelLoadFailed},
			"exiting due to model loading error: gguf_init_from_reader: invalid magic characters: 'this', expected 'GGUF'"},
		{"truncated_file.log", []Event{EventLoadingModel, EventShuttingDown, EventModelLoadFailed},
			"exiting due to model loading error: llama_model_load: error loading model: tensor 'blk.1.ffn_gate.weight' data is not within the file bounds, model is corrupted or incomplete"},
		{"port_in_use.log", []Event{EventBindFailed, EventShuttingDown, EventServerFailed},
			"exiting due to HTTP server error: start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 18080"},
		{"sigterm_inflight.log", []Event{EventLoadingModel, EventModelLoaded, EventListening, EventShuttingDown, EventForcedExit}, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			lines := readFixture(t, tc.file)
			if len(lines) == 0 {
				t.Fatal("empty fixture")
			}
			for i, l := range lines {
				raw := l.Message
				// Every line that looks like a timestamped line must parse as one, with a known level and
				// a non-decreasing offset.
				if !l.Prefixed && len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
					t.Errorf("line %d not recognized: %q", i+1, raw)
				}
				if l.Prefixed && l.Level == LevelNone {
					t.Errorf("line %d: prefixed without level", i+1)
				}
				if i > 0 && l.Prefixed && lines[i-1].Prefixed && l.Offset < lines[i-1].Offset {
					t.Errorf("line %d: offset %v before previous %v", i+1, l.Offset, lines[i-1].Offset)
				}
				if l.Module != "" && !slices.Contains([]string{"srv", "cmn", "slot", "spec"}, l.Module) {
					t.Errorf("line %d: unexpected module %q in %+v", i+1, l.Module, l)
				}
			}
			if got := events(lines); !slices.Equal(got, tc.events) {
				t.Errorf("events = %v, want %v", got, tc.events)
			}
			got := Cause(lines)
			if tc.cause == "" && got != "" || !strings.Contains(got, tc.cause) {
				t.Errorf("Cause = %q, want %q", got, tc.cause)
			}
		})
	}
}

func TestListeningURLFromFixture(t *testing.T) {
	for _, l := range readFixture(t, "start_ok.log") {
		if ev, url := Classify(l); ev == EventListening {
			if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.ContainsAny(url, " \n") {
				t.Fatalf("listening url %q", url)
			}
			return
		}
	}
	t.Fatal("no listening line")
}

func TestVerboseFixtureHasContinuationLines(t *testing.T) {
	lines := readFixture(t, "start_verbose.log")
	cont := 0
	for _, l := range lines {
		if l.Continuation {
			cont++
			if l.Level != LevelInfo {
				t.Errorf("continuation %q has level %v", l.Message, l.Level)
			}
		}
	}
	if cont < 5 {
		t.Fatalf("%d continuation lines; the -lv 4 transcript has a multi-line chat template example", cont)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"start_verbose.log", "truncated_file.log", "port_in_use.log"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := Parse(s)
		if !l.Prefixed && l.Message != strings.TrimRight(s, "\r\n ") {
			t.Fatalf("unprefixed line changed: %q -> %q", s, l.Message)
		}
		if l.Prefixed && (l.Offset < 0 || l.Level == LevelNone) {
			t.Fatalf("bad prefixed line %+v", l)
		}
		if l.Prefixed && !strings.Contains(s, l.Message) {
			t.Fatalf("message %q not in %q", l.Message, s)
		}
		ev, detail := Classify(l)
		if ev < EventNone || ev > EventForcedExit {
			t.Fatalf("Classify(%+v) = unknown event %d", l, ev)
		}
		if (ev == EventNone) != (ev.String() == "none") {
			t.Fatalf("event %d is named %q", ev, ev.String())
		}
		if ev2, detail2 := Classify(Parse(s)); ev2 != ev || detail2 != detail {
			t.Fatalf("Classify not deterministic for %q: (%v, %q) then (%v, %q)", s, ev, detail, ev2, detail2)
		}
		switch {
		case ev == EventNone:
			if detail != "" {
				t.Fatalf("EventNone with detail %q for %q", detail, s)
			}
		case !l.Prefixed && ev != EventForcedExit:
			t.Fatalf("unprefixed line %q classified %v", s, ev)
		case ev == EventListening:
			if l.Func != "llama_server" || detail != strings.TrimSpace(strings.TrimPrefix(l.Message, "listening on ")) {
				t.Fatalf("listening detail %q from %+v", detail, l)
			}
		default:
			if detail != l.Message {
				t.Fatalf("%v detail %q is not the message %q", ev, detail, l.Message)
			}
		}
		if !strings.Contains(s, detail) {
			t.Fatalf("detail %q not in %q", detail, s)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "start_ok.log"))
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var p Parser
		for _, l := range lines {
			p.Parse(l)
		}
	}
}
