package main_test

import (
	"bufio"
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestResourcesWatchPlain(t *testing.T) {
	r := ok(t, "resources", "watch", "-n", "3", "-i", "100ms")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  cpu [\d.]+%  ram [\d.]+ [KMGT]?i?B/[\d.]+ [KMGT]?i?B  llm \w+(,\w+)*  diffusion \w+(,\w+)*  orchestrator ok,(idle|generating)$`)
	if len(lines) != 3 {
		t.Fatalf("3 snapshots: %d lines\n%s", len(lines), r.stdout)
	}
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("line %q", l)
		}
	}
	r = ok(t, "resources", "watch", "-n", "2", "-i", "100ms", "--json")
	docs := jsonLines(t, r.stdout)
	if len(docs) != 2 {
		t.Fatalf("--json: %d documents", len(docs))
	}
	for _, d := range docs {
		u := d["usage"].(map[string]any)
		if u["memory"].(map[string]any)["totalBytes"] == "0" {
			t.Errorf("usage %v", u)
		}
	}
	fails(t, 1, "interval", "resources", "watch", "-i", "10ms", "-n", "1")
}

// readPTY collects what a command wrote to the terminal until it exits.
func runOnPTY(t *testing.T, args ...string) (string, int) {
	t.Helper()
	term, reader := openPTY(t, 100, 40)
	cmd := command(t, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), term, term
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&buf, bufio.NewReader(reader))
		close(done)
	}()
	err := cmd.Wait()
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	// Let the reader drain the terminal, then hang it up: the reader gets EIO and stops.
	time.Sleep(200 * time.Millisecond)
	term.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal reader did not stop")
	}
	return buf.String(), code
}

func TestResourcesWatchRedrawsInPlaceOnATerminal(t *testing.T) {
	needStack(t)
	out, code := runOnPTY(t, "resources", "watch", "-n", "3", "-i", "100ms")
	if code != 0 {
		t.Fatalf("exit %d\n%q", code, out)
	}
	frames := strings.Count(out, "genailab resources at ")
	// Every frame after the first moves back over the previous one ("\x1b[<n>F") and
	// clears it ("\x1b[J"); each line is erased to its end ("\x1b[K").
	redraws := regexp.MustCompile(`\x1b\[(\d+)F\x1b\[Jgenailab resources at `).FindAllStringSubmatch(out, -1)
	if frames != 3 || len(redraws) != 2 || !strings.Contains(out, "\x1b[K\n") {
		t.Fatalf("frames %d, redraws %d:\n%q", frames, len(redraws), out)
	}
	if redraws[0][1] != redraws[1][1] {
		t.Errorf("frames of different heights: %v", redraws)
	}
	for _, want := range []string{"RAM   [", "SERVER ", "llm ", "diffusion ", "orchestrator "} {
		if !strings.Contains(out, want) {
			t.Errorf("the view lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(stripANSI(l))); n > 99 {
			t.Errorf("line of %d columns on a 100-column terminal: %q", n, l)
		}
	}
}

func TestGenerateShowsALiveBarOnATerminal(t *testing.T) {
	startDiffusion(t)
	out, code := runOnPTY(t, "generate", "a terminal fox", "--width", "64", "--height", "64", "--steps", "5", "-o", "tty.png")
	if code != 0 {
		t.Fatalf("exit %d\n%q", code, out)
	}
	bar := regexp.MustCompile(`\x1b\[1F\x1b\[Jsampling +\[=*>? *\] +\d+%  step [1-5]/5`)
	if n := len(bar.FindAllString(out, -1)); n < 2 {
		t.Errorf("want the bar redrawn in place at each step, found %d redraws:\n%q", n, out)
	}
	if !strings.Contains(out, "Saved tty.png: 64x64") {
		t.Errorf("no result line:\n%q", out)
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// TestChatKeepsAConversationOnATerminal types two lines into `llm chat` on a terminal:
// each gets a streamed reply after a ">>> " prompt, and /bye ends it.
func TestChatKeepsAConversationOnATerminal(t *testing.T) {
	needStack(t)
	term, reader := openPTY(t, 100, 40)
	cmd := command(t, "llm", "chat", "--max-tokens", "8", "--seed", "1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term, term, term
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	go io.Copy(&buf, reader)
	prompts := func() int { return strings.Count(buf.String(), ">>> ") }
	waitFor(t, 10*time.Second, "the first prompt", func() bool { return prompts() == 1 })
	reader.WriteString("Hello there.\n")
	waitFor(t, 30*time.Second, "a reply and the second prompt", func() bool { return prompts() == 2 })
	reader.WriteString("And again.\n")
	waitFor(t, 30*time.Second, "a second reply", func() bool { return prompts() == 3 })
	reader.WriteString("/bye\n")
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("chat ended with %v:\n%q", err, buf.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("/bye did not end the chat:\n%q", buf.String())
	}
	if n := strings.Count(buf.String(), " tokens/s, first token after "); n != 2 {
		t.Errorf("want two replies with their statistics, got %d:\n%q", n, buf.String())
	}
	if !printable(stripANSI(buf.String())) {
		t.Errorf("control characters reached the terminal: %q", buf.String())
	}
}
