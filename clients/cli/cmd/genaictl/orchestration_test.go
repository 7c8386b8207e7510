package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// genJob generates a small image through the orchestrator and returns its job id.
func genJob(t *testing.T, prompt string) string {
	t.Helper()
	startDiffusion(t)
	r := ok(t, "generate", prompt, "--width", "64", "--height", "64", "--steps", "2", "-o", "out.png")
	m := regexp.MustCompile(`(?m)^Job (j[0-9a-f]{24})$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no job id in:\n%s", r.stdout)
	}
	return m[1]
}

// TestHostsListDrainUndrain lists the stack's one host, drains it and lets it take images again.
func TestHostsListDrainUndrain(t *testing.T) {
	r := ok(t, "hosts", "list")
	if !regexp.MustCompile(`(?m)^HOST\s+STATE\s+GPUS\s+FREE\s+LLM\s+DIFFUSION\s+RUNNING\s+QUEUED\s+TELEMETRY$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^local\s+ready\s+\d+\s+\d+(\.\d)? [KMGT]?i?B\s+tiny-random-llama\s+`).MatchString(r.stdout) {
		t.Errorf("hosts list:\n%s", r.stdout)
	}
	var list struct {
		Hosts []struct {
			Name, State, LlmModel string
			LlmRunning            bool
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(ok(t, "hosts", "list", "--json").stdout), &list); err != nil || len(list.Hosts) != 1 ||
		list.Hosts[0].Name != "local" || list.Hosts[0].State != "HOST_STATE_READY" || !list.Hosts[0].LlmRunning {
		t.Errorf("hosts list --json: %v %+v", err, list)
	}

	t.Cleanup(func() { ctl(t, "hosts", "undrain", "local") })
	// The state, with the orchestrator's reason for it.
	if r := ok(t, "hosts", "drain", "local"); !regexp.MustCompile(`^Host local: draining \(\S[^\n]*\)\.\n$`).MatchString(r.stdout) {
		t.Errorf("drain: %q", r.stdout)
	}
	if r := ok(t, "hosts", "list"); !regexp.MustCompile(`(?m)^local\s+draining\s`).MatchString(r.stdout) {
		t.Errorf("hosts list after drain:\n%s", r.stdout)
	}
	var undrained struct {
		Host struct{ Name, State string } `json:"host"`
	}
	if err := json.Unmarshal([]byte(ok(t, "hosts", "undrain", "local", "--json").stdout), &undrained); err != nil ||
		undrained.Host.Name != "local" || undrained.Host.State != "HOST_STATE_READY" {
		t.Errorf("undrain --json: %v %+v", err, undrained)
	}
	if r := ok(t, "hosts", "undrain", "local"); r.stdout != "Host local: ready.\n" {
		t.Errorf("second undrain: %q", r.stdout)
	}
	fails(t, 1, `"no-such-host"`, "hosts", "drain", "no-such-host")
	fails(t, 2, "accepts 1 arg(s), received 0", "hosts", "drain")

	if r := ok(t, "__complete", "hosts", "drain", ""); !strings.Contains(r.stdout, "local\tready\n") {
		t.Errorf("host completion:\n%s", r.stdout)
	}
}

// TestDiffusionLogs prints the diffusion engine's output, as lines and as JSON, and follows it
// through a generation.
func TestDiffusionLogs(t *testing.T) {
	genJob(t, "a fox for the logs")
	r := ok(t, "diffusion", "logs", "-n", "3")
	if n := strings.Count(r.stdout, "\n"); n != 3 || !printable(r.stdout) {
		t.Errorf("diffusion logs -n 3: %d lines\n%q", n, r.stdout)
	}
	docs := jsonLines(t, ok(t, "diffusion", "logs", "-n", "2", "--json").stdout)
	if len(docs) != 2 {
		t.Errorf("diffusion logs -n 2 --json: %d documents", len(docs))
	}
	for _, d := range docs {
		if l, isLine := d["line"].(map[string]any); !isLine || (l["raw"] == "" && l["message"] == "") {
			t.Errorf("log line %v", d)
		}
	}

	follow, out, errb := background(t, "diffusion", "logs", "-f", "-n", "0")
	// The stream is open once the service counts the reader; a generation's output follows.
	time.Sleep(300 * time.Millisecond)
	genJob(t, "a fox to follow")
	waitFor(t, 30*time.Second, "followed diffusion log lines", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	if code := interrupt(t, follow); code != 0 || errb.String() != "" {
		t.Errorf("diffusion logs -f after Ctrl-C: exit %d, stderr %q", code, errb.String())
	}
	if !printable(out.String()) {
		t.Error("followed logs hold control characters")
	}
}

// TestJobsDelete deletes a finished job and its image.
func TestJobsDelete(t *testing.T) {
	id := genJob(t, "a fox to delete")
	if r := ok(t, "__complete", "jobs", "delete", ""); !strings.Contains(r.stdout, id+"\tsucceeded: a fox to delete\n") {
		t.Errorf("job completion:\n%s", r.stdout)
	}
	if r := ok(t, "jobs", "delete", id); r.stdout != "Job "+id+" deleted.\n" {
		t.Errorf("delete: %q", r.stdout)
	}
	fails(t, 1, "no such job", "jobs", "get", id)
	fails(t, 1, "no such job", "jobs", "delete", id)
	if r := ok(t, "jobs", "list", "--json"); strings.Contains(r.stdout, id) {
		t.Errorf("deleted job still listed:\n%s", r.stdout)
	}
	id = genJob(t, "a fox to delete as json")
	if r := ok(t, "jobs", "rm", id, "--json"); r.stdout != "{}\n" {
		t.Errorf("delete --json: %q", r.stdout)
	}
}

// TestOrchestratorSavedStateAndWouldNeedOffload asks the orchestrator for the LLM state it saved
// (none: nothing is offloaded) and for its decision about an image, with the numbers behind it.
func TestOrchestratorSavedStateAndWouldNeedOffload(t *testing.T) {
	if r := ok(t, "orchestrator", "saved-state"); r.stdout != "No saved LLM state: the LLM is not offloaded.\n" {
		t.Errorf("saved-state: %q", r.stdout)
	}
	if r := ok(t, "orchestrator", "saved-state", "--host", "local", "--json"); r.stdout != "{\n  \"states\": []\n}\n" {
		t.Errorf("saved-state --json: %q", r.stdout)
	}

	r := ok(t, "orchestrator", "would-need-offload", "-W", "64", "-H", "64")
	for _, re := range []string{`(?m)^Needs offload:\s+(yes|no)$`, `(?m)^Why:\s+\S.*$`, `(?m)^Memory:\s+(RAM|VRAM of GPU \d+)$`,
		`(?m)^Required:\s+\d+(\.\d)? [KMGT]?i?B$`, `(?m)^LLM running:\s+yes$`, `(?m)^LLM would release:\s+\d+(\.\d)? [KMGT]?i?B$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("would-need-offload lacks %s:\n%s", re, r.stdout)
		}
	}
	var d struct {
		NeedsOffload  *bool  `json:"needsOffload"`
		Explanation   string `json:"explanation"`
		RequiredBytes string `json:"requiredBytes"`
		LlmRunning    bool   `json:"llmRunning"`
	}
	if err := json.Unmarshal([]byte(ok(t, "orch", "would-need-offload", "--width", "128", "--height", "64", "--json").stdout), &d); err != nil ||
		d.NeedsOffload == nil || d.Explanation == "" || d.RequiredBytes == "" || d.RequiredBytes == "0" || !d.LlmRunning {
		t.Errorf("would-need-offload --json: %v %+v", err, d)
	}
	fails(t, 1, "width", "orchestrator", "would-need-offload", "--width", "65")
	fails(t, 1, `"no-such-host"`, "orchestrator", "would-need-offload", "--host", "no-such-host")
	if r := ok(t, "__complete", "orchestrator", "saved-state", "--host", ""); !strings.Contains(r.stdout, "local\tready\n") {
		t.Errorf("--host completion:\n%s", r.stdout)
	}
}
