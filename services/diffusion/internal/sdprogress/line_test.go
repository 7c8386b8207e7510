package sdprogress

import (
	"testing"
)

func TestParseLineLog(t *testing.T) {
	cases := []struct {
		in      string
		level   Level
		file    string
		line    int
		message string
	}{
		{"[INFO ] stable-diffusion.cpp:713  - loading model from 'tinysd.gguf'", LevelInfo, "stable-diffusion.cpp", 713, "loading model from 'tinysd.gguf'"},
		{"[WARN ] model_loader.cpp:254  - file does-not-exist.gguf not found", LevelWarn, "model_loader.cpp", 254, "file does-not-exist.gguf not found"},
		{"[ERROR] main.cpp:452  - failed to create directory '/proc/nope': No such file or directory", LevelError, "main.cpp", 452, "failed to create directory '/proc/nope': No such file or directory"},
		{"[DEBUG] clip_tokenizer.cpp:66   - vocab size: 49408", LevelDebug, "clip_tokenizer.cpp", 66, "vocab size: 49408"},
		{"[INFO ] stable-diffusion.cpp:1502 - using TAE for encoding / decoding", LevelInfo, "stable-diffusion.cpp", 1502, "using TAE for encoding / decoding"},
		{"[INFO ] stable-diffusion.cpp:908  - Version: SDXS (512-DS) ", LevelInfo, "stable-diffusion.cpp", 908, "Version: SDXS (512-DS) "},
		{"[DEBUG] main.cpp:690  - System Info: ", LevelDebug, "main.cpp", 690, "System Info: "},
		// --color wraps only the tag.
		{"\x1b[34;1m[INFO ]\x1b[0m stable-diffusion.cpp:5679 - generating image: 1/1 - seed 42", LevelInfo, "stable-diffusion.cpp", 5679, "generating image: 1/1 - seed 42"},
		{"\x1b[31;1m[ERROR]\x1b[0m common.cpp:325  - error: unknown argument: --foo", LevelError, "common.cpp", 325, "error: unknown argument: --foo"},
		// A pty's \r\n leaves a \r that the Parser treats as a terminator; ParseLine ignores it.
		{"[INFO ] main.cpp:562  - 1/1 images saved\r", LevelInfo, "main.cpp", 562, "1/1 images saved"},
	}
	for _, c := range cases {
		ev := ParseLine([]byte(c.in))
		if ev.Kind != KindLog || ev.Level != c.level || ev.File != c.file || ev.Line != c.line || ev.Message != c.message {
			t.Errorf("ParseLine(%q) = kind %v level %v file %q line %d message %q", c.in, ev.Kind, ev.Level, ev.File, ev.Line, ev.Message)
		}
	}
}

func TestParseLineMarkers(t *testing.T) {
	log := func(msg string) string { return "[INFO ] stable-diffusion.cpp:1    - " + msg }
	cases := []struct {
		in   string
		want Event
	}{
		{log("loading model from 'models/x y.gguf'"), Event{Marker: MarkerLoadingModel, Path: "models/x y.gguf"}},
		{"[INFO ] main.cpp:148  - listening on: http://127.0.0.1:35159", Event{Marker: MarkerListening, Value: "http://127.0.0.1:35159"}},
		{"[WARN ] stable-diffusion.cpp:4154 - align generation request up 60x64 to 64x64 (multiple=64)", Event{Marker: MarkerAligned, Width: 64, Height: 64}},
		{log("generate_image 512x256"), Event{Marker: MarkerGenerateStart, Width: 512, Height: 256}},
		{log("sampling using Euler A method"), Event{Marker: MarkerSamplingMethod, Value: "Euler A"}},
		{log("get_learned_condition completed, taking 0.61s"), Event{Marker: MarkerConditioned, Seconds: 0.61}},
		{log("generating image: 2/3 - seed 403558898"), Event{Marker: MarkerGeneratingImage, Index: 2, Count: 3, Seed: 403558898}},
		{log("sampling completed, taking 20.83s"), Event{Marker: MarkerSamplingCompleted, Seconds: 20.83}},
		{log("decoding 2 latents"), Event{Marker: MarkerDecoding, Count: 2}},
		{log("decode_first_stage completed, taking 6.82s"), Event{Marker: MarkerDecodeCompleted, Seconds: 6.82}},
		{log("generate_image completed in 28.21s"), Event{Marker: MarkerGenerateCompleted, Seconds: 28.21}},
		{"[INFO ] main.cpp:490  - save result image 1 to 'runs/cli/it's (x).png' (success)", Event{Marker: MarkerSaved, Index: 1, Path: "runs/cli/it's (x).png", Success: true}},
		{"[INFO ] main.cpp:490  - save result image 0 to '/tmp/o.png' (failure)", Event{Marker: MarkerSaved, Path: "/tmp/o.png"}},
		{log("generating 1 latent images completed, taking 0.25s"), Event{}},
		{log("latent 1 decoded, taking 0.31s"), Event{}},
		{log("generating image: garbage"), Event{}},
	}
	for _, c := range cases {
		ev := ParseLine([]byte(c.in))
		got := Event{Marker: ev.Marker, Value: ev.Value, Path: ev.Path, Width: ev.Width, Height: ev.Height,
			Index: ev.Index, Count: ev.Count, Seed: ev.Seed, Seconds: ev.Seconds, Success: ev.Success}
		if got != c.want {
			t.Errorf("ParseLine(%q) markers = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseLineBars(t *testing.T) {
	cases := []struct {
		in      string
		kind    Kind
		cur, of int
		rate    float64
		unit    string
	}{
		{"  |=========================>                        | 1/2 - 4.41it/s\x1b[K", KindStepBar, 1, 2, 4.41, "it/s"},
		{"  |==================================================| 2/2 - 46.85it/s\x1b[K", KindStepBar, 2, 2, 46.85, "it/s"},
		{"  |>                                                 | 1/60 - 7.20it/s\x1b[K", KindStepBar, 1, 60, 7.2, "it/s"},
		{"  |=>                                                | 1/30 - 1.00s/it\x1b[K", KindStepBar, 1, 30, 1, "s/it"},
		{"  |##################################################| 196/196 - 329.73MB/s\x1b[K", KindLoadBar, 196, 196, 329.73, "MB/s"},
		{"  |#                                                 | 1/280 - 0.00MB/s\x1b[K", KindLoadBar, 1, 280, 0, "MB/s"},
		{"  |#########                                         | 11/67 - 1.20GB/s\x1b[K", KindLoadBar, 11, 67, 1.2, "GB/s"},
	}
	for _, c := range cases {
		ev := ParseLine([]byte(c.in))
		if ev.Kind != c.kind || ev.Current != c.cur || ev.Total != c.of || ev.Rate != c.rate || ev.Unit != c.unit {
			t.Errorf("ParseLine(%q) = %v %d/%d %v %s", c.in, ev.Kind, ev.Current, ev.Total, ev.Rate, ev.Unit)
		}
	}
	if d := ParseLine([]byte(cases[0].in)).StepDuration(); d < 0.226 || d > 0.227 {
		t.Errorf("StepDuration of 4.41it/s = %v", d)
	}
	if d := ParseLine([]byte(cases[3].in)).StepDuration(); d != 1 {
		t.Errorf("StepDuration of 1.00s/it = %v", d)
	}
}

func TestParseLineText(t *testing.T) {
	for _, in := range []string{
		"#1  0x000055722fe65b1b in ggml_print_backtrace ()",
		"terminate called after throwing an instance of 'std::invalid_argument'",
		"Usage: sd-cli [options]",
		"   SSE3 = 1 |    SSSE3 = 1 |    AVX = 1 | ",
		"[INFO ] no file column here",
		"[NOTE ] x.cpp:1 - unknown level",
		"  |=====| x/2 - 1it/s",
	} {
		if ev := ParseLine([]byte(in)); ev.Kind != KindText || ev.Text != in {
			t.Errorf("ParseLine(%q) = %v %q, want text", in, ev.Kind, ev.Text)
		}
	}
}
