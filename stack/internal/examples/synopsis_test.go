package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/testenv"
)

// synopsis is one command of a usage synopsis: its words and the long flags its line names.
type synopsis struct {
	words []string
	flags []string
}

// parseSynopsis reads the indented usage lines of a README that start with prog:
// "prog group sub ARG [--flag ...] | other [-f] | ..." is prog group sub and prog group other.
func parseSynopsis(md, prog string) []synopsis {
	flagRE := regexp.MustCompile(`--[a-z][a-z-]+`)
	wordRE := regexp.MustCompile(`^[a-z][a-z-]*$`)
	var out []synopsis
	for _, line := range strings.Split(md, "\n") {
		rest, ok := strings.CutPrefix(line, "    "+prog+" ")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "   #") // a trailing comment
		group, alts, _ := strings.Cut(rest, " ")
		var subs []string
		if alts != "" && !strings.HasPrefix(alts, "-") && !strings.HasPrefix(alts, "[") && !strings.HasPrefix(alts, `"`) {
			subs = strings.Split(alts, " | ")
		} else {
			subs = []string{alts}
		}
		for _, alt := range subs {
			s := synopsis{words: []string{group}}
			first, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
			if wordRE.MatchString(first) {
				s.words = append(s.words, first)
			}
			s.flags = flagRE.FindAllString(alt, -1)
			out = append(out, s)
		}
	}
	return out
}

func TestParseSynopsis(t *testing.T) {
	got := parseSynopsis("x\n    p models list | download PRESET|URL | delete ID\n    p generate \"a fox\" [--width --seed]\n    p llm start [--model ID ...] | logs [-f]\n", "p")
	var flat []string
	for _, s := range got {
		flat = append(flat, strings.Join(s.words, " ")+" "+strings.Join(s.flags, ","))
	}
	want := []string{"models list ", "models download ", "models delete ", "generate --width,--seed", "llm start --model", "llm logs "}
	if strings.Join(flat, ";") != strings.Join(want, ";") {
		t.Fatalf("got %q\nwant %q", flat, want)
	}
}

// TestCLIREADMESynopsisIsTrue checks the usage synopsis of clients/cli/README.md against the
// built genaictl: every command it lists exists (its --help exits 0 and names that command)
// and every long flag its line names is one of that command's flags. The synopsis is not a
// runnable block (it lists alternatives), so TestREADMEExamples cannot run it.
func TestCLIREADMESynopsisIsTrue(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, "clients", "cli", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "genaictl")
	build := exec.Command("go", "build", "-o", bin, "./clients/cli/cmd/genaictl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build genaictl: %v\n%s", err, out)
	}
	cmds := parseSynopsis(string(md), "genaictl")
	if len(cmds) < 20 {
		t.Fatalf("found %d commands in the README's synopsis: has its format changed?", len(cmds))
	}
	for _, c := range cmds {
		name := strings.Join(c.words, " ")
		out, err := exec.Command(bin, append(append([]string{}, c.words...), "--help")...).CombinedOutput()
		if err != nil {
			t.Errorf("genaictl %s --help: %v\n%s", name, err, out)
			continue
		}
		help := string(out)
		if !strings.Contains(help, "genaictl "+name) {
			t.Errorf("genaictl %s: the README lists it, but --help shows another command:\n%s", name, help)
		}
		for _, f := range c.flags {
			if !regexp.MustCompile(`(?m)^\s+(?:-\w, )?` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
				t.Errorf("genaictl %s: the README names %s, which --help does not list", name, f)
			}
		}
	}
}
