package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
)

// printable reports whether s holds nothing a terminal would interpret: no control
// characters but newline and tab.
func printable(s string) bool {
	for _, r := range s {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || r == 0x202e {
			return false
		}
	}
	return true
}

func TestLLMStatusChatLogs(t *testing.T) {
	r := ok(t, "llm", "status")
	for _, re := range []string{`(?m)^Status:\s+running$`, `(?m)^Health:\s+ok$`, `(?m)^Model:\s+tiny-random-llama$`, `(?m)^PID:\s+\d+$`, `(?m)^URL:\s+http://127\.0\.0\.1:\d+$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("llm status lacks %s:\n%s", re, r.stdout)
		}
	}
	golden(t, "llm-status", ok(t, "llm", "status", "--json").stdout)

	// One-shot chat: the random-weight model's text reaches stdout made safe.
	r = ok(t, "llm", "chat", "--max-tokens", "24", "--seed", "3", "Say", "hello.")
	if strings.TrimSpace(r.stdout) == "" || !printable(r.stdout) {
		t.Errorf("chat output %q: want text with no control characters", r.stdout)
	}
	if !regexp.MustCompile(`^\[\d+ tokens, [\d.]+ tokens/s, first token after \S+, \w+\]\n$`).MatchString(r.stderr) {
		t.Errorf("chat stats %q", r.stderr)
	}
	// The message can come on stdin.
	if r := ctlIn(t, "Hello from a pipe.\n", "llm", "chat", "--max-tokens", "8"); r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Errorf("chat from stdin: %s", r)
	}
	// --json: the deltas then the closing statistics, one document per line; the
	// deltas carry the model's raw text (JSON escapes what a terminal must not see).
	r = ok(t, "llm", "chat", "--max-tokens", "24", "--seed", "3", "--json", "Say hello.")
	docs := jsonLines(t, r.stdout)
	var text strings.Builder
	for _, d := range docs[:len(docs)-1] {
		delta, isDelta := d["delta"].(map[string]any)
		if !isDelta {
			t.Fatalf("line %v: want a delta", d)
		}
		text.WriteString(delta["content"].(string))
	}
	done, isDone := docs[len(docs)-1]["done"].(map[string]any)
	if !isDone || len(docs) < 3 {
		t.Fatalf("chat --json: %d lines, last %v", len(docs), docs[len(docs)-1])
	}
	if n, _ := done["completionTokens"].(float64); n < 1 || n > 24 {
		t.Errorf("done %v", done)
	}
	if text.Len() == 0 {
		t.Error("no text in the deltas")
	}

	r = ok(t, "llm", "logs", "-n", "3")
	if n := strings.Count(r.stdout, "\n"); n != 3 || !printable(r.stdout) {
		t.Errorf("logs -n 3: %d lines\n%q", n, r.stdout)
	}
	r = ok(t, "llm", "logs", "-n", "2", "--json")
	for _, d := range jsonLines(t, r.stdout) {
		if _, ok := d["line"].(map[string]any)["raw"]; !ok {
			t.Errorf("log line %v", d)
		}
	}
}

// TestLLMStopStartRestartAndFollowLogs drives the real llama-server's life cycle while
// `llm logs -f` follows it.
func TestLLMStopStartRestartAndFollowLogs(t *testing.T) {
	follow, out, errb := background(t, "llm", "logs", "-f", "-n", "0")
	time.Sleep(300 * time.Millisecond) // let the stream open

	r := ok(t, "llm", "stop")
	if r.stdout != "LLM server stopped (model tiny-random-llama).\n" {
		t.Errorf("stop: %q", r.stdout)
	}
	if r := ok(t, "llm", "stop"); r.stdout != "LLM server was not running.\n" {
		t.Errorf("second stop: %q", r.stdout)
	}
	if r := ok(t, "llm", "status"); !regexp.MustCompile(`(?m)^Status:\s+stopped$`).MatchString(r.stdout) {
		t.Errorf("status after stop:\n%s", r.stdout)
	}
	fails(t, 1, "not running", "llm", "chat", "--wait", "100ms", "hello")
	fails(t, 1, "model not found", "llm", "start", "--model", "no-such-model")

	r = ok(t, "llm", "start", "--model", "tiny-random-llama", "--ctx-size", "512")
	if !regexp.MustCompile(`^LLM server running: model tiny-random-llama, pid \d+, http://127\.0\.0\.1:\d+, ready in \S+\.\n$`).MatchString(r.stdout) {
		t.Errorf("start: %q", r.stdout)
	}
	fails(t, 1, "already", "llm", "start", "--model", "tiny-random-llama")
	r = ok(t, "llm", "restart", "--json")
	var resp struct {
		Info struct {
			Status string `json:"status"`
			Config struct {
				ContextSize int `json:"contextSize"`
			} `json:"config"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil || resp.Info.Status != "SERVER_STATUS_RUNNING" || resp.Info.Config.ContextSize != 512 {
		t.Errorf("restart keeps the configuration: %v %+v\n%s", err, resp, r.stdout)
	}
	r = ok(t, "llm", "restart", "--ctx-size", "256")
	if !strings.HasPrefix(r.stdout, "LLM server running: model tiny-random-llama") {
		t.Errorf("restart with options: %q", r.stdout)
	}

	waitFor(t, 10*time.Second, "followed log lines", func() bool { return strings.Count(out.String(), "\n") > 5 })
	if code := interrupt(t, follow); code != 0 || errb.String() != "" {
		t.Errorf("logs -f after Ctrl-C: exit %d, stderr %q", code, errb.String())
	}
	if !printable(out.String()) {
		t.Error("followed logs hold control characters")
	}
}
