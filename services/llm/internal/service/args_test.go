package service

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/supervisor"
)

func ptr[T any](v T) *T { return &v }

func TestBuildArgs(t *testing.T) {
	cfg := &llmv1.LLMConfig{
		ModelId: "m", Host: "127.0.0.1", Port: 8081, Threads: 4, ContextSize: 2048, GpuLayers: ptr(int32(-1)),
		ParallelSlots: 2, FlashAttention: llmv1.FlashAttention_FLASH_ATTENTION_OFF,
		CacheTypeK: "q8_0", CacheTypeV: "f16", NoMmap: true, ExtraArgs: []string{"--temp", "0.5"},
	}
	got := buildArgs(cfg, "/models/m/model.gguf")
	want := []string{
		"-m", "/models/m/model.gguf", "--host", "127.0.0.1", "--port", "8081", "-t", "4", "-c", "2048",
		"--log-colors", "off", "--metrics", "-ngl", "all", "-np", "2", "-fa", "off",
		"--cache-type-k", "q8_0", "--cache-type-v", "f16", "--no-mmap", "--temp", "0.5",
	}
	if !slices.Equal(got, want) {
		t.Errorf("buildArgs =\n%q\nwant\n%q", got, want)
	}

	// Unset GPU layers (a GPU host) are left to llama-server; zero is passed.
	min := &llmv1.LLMConfig{Host: "127.0.0.1", Port: 1, Threads: 1, ContextSize: 256}
	if got := buildArgs(min, "/m"); slices.Contains(got, "-ngl") || slices.Contains(got, "-np") || slices.Contains(got, "-fa") {
		t.Errorf("minimal config passes optional flags: %q", got)
	}
	min.GpuLayers = ptr(int32(0))
	if got := buildArgs(min, "/m"); !slices.Contains(got, "-ngl") || got[slices.Index(got, "-ngl")+1] != "0" {
		t.Errorf("gpu_layers 0 not passed: %q", got)
	}
}

func TestValidateExtraArgs(t *testing.T) {
	ok := [][]string{
		nil,
		{"--temp", "0.7", "--top-k", "40"},
		{"--temp=0.7", "--mlock", "--seed", "-1"},
		{"-b", "512", "--no-webui", "--jinja"},
	}
	for _, a := range ok {
		if err := validateExtraArgs(a); err != nil {
			t.Errorf("%q: %v", a, err)
		}
	}
	bad := []struct {
		args []string
		msg  string
	}{
		{[]string{"--port", "80"}, "not allowed"},
		{[]string{"-m", "/etc/passwd"}, "not allowed"},
		{[]string{"--api-key", "x"}, "not allowed"},
		{[]string{"--log-file", "/tmp/x"}, "not allowed"},
		{[]string{"--slot-save-path", "/"}, "not allowed"},
		{[]string{"--path", "/"}, "not allowed"},
		{[]string{"-hf", "org/model"}, "not allowed"},
		{[]string{"--temp"}, "needs a value"},
		{[]string{"--temp="}, "empty value"},
		{[]string{"--mlock=1"}, "takes no value"},
		{[]string{"0.7"}, "not a flag"},
		{[]string{"--chat-template", "a\x00b"}, "NUL"},
		{[]string{strings.Repeat("x", 2000)}, "too long"},
		{slices.Repeat([]string{"--mlock"}, 65), "at most"},
	}
	for _, tc := range bad {
		err := validateExtraArgs(tc.args)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%.40q: err = %v, want ErrInvalidConfig mentioning %q", tc.args, err, tc.msg)
		}
	}
}

func TestValidate(t *testing.T) {
	good := &llmv1.LLMConfig{ModelId: "tiny", Host: "::1", Port: 0, GpuLayers: ptr(int32(-1)), CacheTypeK: "q4_0"}
	if err := validate(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, c := range map[string]*llmv1.LLMConfig{
		"no model":       {},
		"escaping id":    {ModelId: "../etc"},
		"host name":      {ModelId: "m", Host: "example.com"},
		"port":           {ModelId: "m", Port: 70000},
		"threads":        {ModelId: "m", Threads: -1},
		"context":        {ModelId: "m", ContextSize: -5},
		"gpu layers":     {ModelId: "m", GpuLayers: ptr(int32(-2))},
		"slots":          {ModelId: "m", ParallelSlots: 1000},
		"flash mode":     {ModelId: "m", FlashAttention: 7},
		"cache type":     {ModelId: "m", CacheTypeV: "q2_k"},
		"extra argument": {ModelId: "m", ExtraArgs: []string{"--host", "0.0.0.0"}},
	} {
		if err := validate(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// startErrorFrom builds the StartError the supervisor reports for a
// captured llama-server run.
func startErrorFrom(t *testing.T, fixture string) error {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "llamalog", "testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	tail := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return &supervisor.StartError{
		Name: engineName, Reason: supervisor.ErrExitedDuringStart,
		Exit: &supervisor.ExitStatus{Code: 1, At: time.Now()}, Tail: tail,
	}
}

func TestExplainStart(t *testing.T) {
	for _, tc := range []struct {
		fixture, want string
		portInUse     bool
	}{
		{"truncated_file.log", "data is not within the file bounds", false},
		{"garbage_file.log", "invalid magic characters", false},
		{"empty_file.log", "failed to read magic", false},
		{"missing_file.log", "failed to open GGUF file", false},
		{"port_in_use.log", "couldn't bind HTTP server socket", true},
	} {
		err := explainStart(startErrorFrom(t, tc.fixture))
		first, _, _ := strings.Cut(err.Error(), "\n")
		if !strings.Contains(first, tc.want) {
			t.Errorf("%s: first line %q does not say %q", tc.fixture, first, tc.want)
		}
		if !errors.Is(err, supervisor.ErrExitedDuringStart) {
			t.Errorf("%s: lost the supervisor's reason: %v", tc.fixture, err)
		}
		if got := errors.Is(err, supervisor.ErrPortInUse); got != tc.portInUse {
			t.Errorf("%s: ErrPortInUse = %v, want %v", tc.fixture, got, tc.portInUse)
		}
	}
	plain := errors.New("launch failed")
	if got := explainStart(plain); got != plain {
		t.Errorf("explainStart changed a non-start error: %v", got)
	}
}
