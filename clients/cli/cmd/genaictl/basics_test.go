package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/modelstore/presetid"
)

func TestHelpListsEveryCommand(t *testing.T) {
	r := ok(t, "--help")
	for _, c := range []string{"system", "models", "llm", "diffusion", "generate", "edit", "jobs", "resources", "events", "hosts", "orchestrator", "completion"} {
		if !strings.Contains(r.stdout, "  "+c+" ") {
			t.Errorf("help does not list %s:\n%s", c, r.stdout)
		}
	}
	for args, subs := range map[string][]string{
		"models":       {"list", "presets", "download", "delete", "verify", "usage"},
		"llm":          {"start", "stop", "restart", "status", "logs", "chat"},
		"diffusion":    {"start", "stop", "status", "logs"},
		"jobs":         {"list", "get", "cancel", "delete"},
		"resources":    {"watch"},
		"hosts":        {"list", "drain", "undrain"},
		"orchestrator": {"saved-state", "would-need-offload"},
	} {
		r := ok(t, args, "--help")
		for _, s := range subs {
			if !strings.Contains(r.stdout, "  "+s+" ") {
				t.Errorf("%s help does not list %s:\n%s", args, s, r.stdout)
			}
		}
	}
	r = ok(t, "generate", "--help")
	for _, f := range []string{"--output", "--width", "--height", "--steps", "--cfg-scale", "--seed", "--sampler", "--negative", "--preview", "--count", "--addr", "--token", "--json"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("generate help lacks %s", f)
		}
	}
}

func TestShellCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := ok(t, "completion", shell)
		if !strings.Contains(r.stdout, "genaictl") || len(r.stdout) < 500 {
			t.Errorf("completion %s: %d bytes", shell, len(r.stdout))
		}
	}
	// Flag values and, through the real services, model ids.
	r := ok(t, "__complete", "generate", "x", "--sampler", "")
	for _, s := range []string{"euler_a", "dpm++2m", "lcm"} {
		if !strings.Contains(r.stdout, s+"\n") {
			t.Errorf("sampler completion lacks %s:\n%s", s, r.stdout)
		}
	}
	r = ok(t, "__complete", "models", "verify", "")
	if !strings.Contains(r.stdout, "tiny-random-llama\tllm: ") {
		t.Errorf("model completion:\n%s", r.stdout)
	}
	r = ok(t, "__complete", "models", "download", "")
	if !strings.Contains(r.stdout, presetid.Qwen25Instruct05BQ4KM+"\tllm: ") {
		t.Errorf("preset completion:\n%s", r.stdout)
	}
}

// Regression: the help of 'models download' named a preset, qwen2.5-0.5b-instruct-q4, that
// the catalog does not have. Every preset its examples name is one the services offer.
func TestDownloadHelpNamesPresetsThatExist(t *testing.T) {
	var catalog struct {
		Presets []struct{ ID string } `json:"presets"`
	}
	if err := json.Unmarshal([]byte(ok(t, "models", "presets", "--json").stdout), &catalog); err != nil || len(catalog.Presets) == 0 {
		t.Fatalf("presets --json: %v %+v", err, catalog)
	}
	offered := map[string]bool{}
	for _, p := range catalog.Presets {
		offered[p.ID] = true
	}
	named := regexp.MustCompile(`(?m)^\s*genaictl models download (\S+)\s+# a preset`).FindAllStringSubmatch(ok(t, "models", "download", "--help").stdout, -1)
	if len(named) == 0 {
		t.Fatal("the help names no preset")
	}
	for _, m := range named {
		if !offered[m[1]] {
			t.Errorf("the help names preset %q; the services offer %v", m[1], offered)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	fails(t, 2, `unknown command "nope" for "genaictl"`, "nope")
	fails(t, 2, "unknown flag: --bogus", "models", "list", "--bogus")
	fails(t, 2, "requires at least 1 arg", "generate")
	fails(t, 2, "accepts 1 arg(s), received 0", "models", "verify")
	fails(t, 2, `invalid argument "many" for "--steps"`, "generate", "x", "--steps", "many")
}

func TestBadInputIsAFailureWithOneLine(t *testing.T) {
	fails(t, 1, `unknown model type "vision"`, "models", "list", "--type", "vision")
	fails(t, 1, `--status "lost": want one of queued, running, succeeded, failed, cancelled`, "jobs", "list", "--status", "lost")
	fails(t, 1, `--flash-attn "maybe"`, "llm", "start", "--flash-attn", "maybe")
	fails(t, 1, "give exactly one source", "models", "download")
	fails(t, 1, `bad address "a b"`, "--addr", "a b", "system", "info")
	fails(t, 1, "refusing to send the token without TLS", "--addr", "gpu1.example", "--token", "t", "system", "info")
}

func TestUnreachableServiceSaysWhere(t *testing.T) {
	// Port 1 on loopback is closed; the flag overrides the environment.
	r := fails(t, 1, "cannot reach the monitor service at 127.0.0.1:1: connection refused", "--monitor-addr", "127.0.0.1:1", "system", "info")
	if !strings.Contains(r.stderr, "--addr") {
		t.Errorf("no hint about --addr: %q", r.stderr)
	}
	fails(t, 1, "cannot reach the orchestrator service at 127.0.0.1:1", "--addr", "127.0.0.1:1", "jobs", "list")
}
