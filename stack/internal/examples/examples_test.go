package examples_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/examples"
)

func TestExtractReadsBlocksAndMarkers(t *testing.T) {
	md := "# t\n\n```sh\necho one\n```\n\n<!-- example: lab -- needs systemd -->\n\n```sh\nsystemctl start x\n```\n" +
		"```go\n```sh inside go\n```\n<!-- example: serves needs-sdcpp -->\n~~~sh\nbin/genailab up\n~~~\n" +
		"<!-- example: lab on:host1,control -- root -->\n```sh\nsystemctl daemon-reload\n```\n"
	got, err := examples.Extract("R.md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	want := []examples.Block{
		{File: "R.md", Line: 3, Text: "echo one\n"},
		{File: "R.md", Line: 9, Kinds: []string{"lab"}, Why: "needs systemd", Text: "systemctl start x\n"},
		{File: "R.md", Line: 16, Kinds: []string{"serves", "needs-sdcpp"}, Text: "bin/genailab up\n"},
		{File: "R.md", Line: 20, Kinds: []string{"lab"}, On: []string{"host1", "control"}, Why: "root", Text: "systemctl daemon-reload\n"},
	}
	if !got[3].Runs() || got[1].Runs() {
		t.Errorf("a lab block runs only with on: (got %v, %v)", got[3].Runs(), got[1].Runs())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks:\n got %#v\nwant %#v", got, want)
	}
}

func TestExtractRefusesBadMarkers(t *testing.T) {
	for name, md := range map[string]string{
		"unknown kind":    "<!-- example: labb -->\n```sh\nx\n```\n",
		"no kind":         "<!-- example: -- why -->\n```sh\nx\n```\n",
		"not before sh":   "<!-- example: lab -->\n```go\nx\n```\n",
		"text between":    "<!-- example: lab -->\nsome prose\n```sh\nx\n```\n",
		"dangling":        "text\n<!-- example: lab -->\n",
		"unclosed fence":  "```sh\nx\n",
		"on: without lab": "<!-- example: serves on:host1 -->\n```sh\nx\n```\n",
		"empty machine":   "<!-- example: lab on:host1, -->\n```sh\nx\n```\n",
	} {
		if _, err := examples.Extract("R.md", []byte(md)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCommandsJoinsContinuationsAndDropsComments(t *testing.T) {
	got := examples.Commands("# a comment\nbin/genailab up -a \\\n  -b   # why\n\nmake run # x\n")
	want := []string{"bin/genailab up -a  -b   # why", "make run # x"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestExpectedStatusesTakesTheFirstOfEachComment(t *testing.T) {
	got := examples.ExpectedStatuses("curl a\n# {\"ok\":1}\ncurl b\n# HTTP 400 {\"error\":\"...\"} (503 when busy)\ncurl c   # → 401\n")
	if want := []int{400, 401}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRepoPaths(t *testing.T) {
	got := examples.RepoPaths("install -m 0644 deploy/systemd/*.service /etc/x   # deploy/ignored\nkubectl apply -f=deploy/k8s/.\n")
	if want := []string{"deploy/systemd/*.service", "deploy/k8s/"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Every README of the repository parses: known markers only, closed fences, and at least
// the README's own examples.
func TestTheRepositoryREADMEsParse(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := examples.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int{}
	for _, b := range blocks {
		files[b.File]++
	}
	if files["README.md"] == 0 || files["deploy/README.md"] == 0 {
		t.Fatalf("no examples found in README.md or deploy/README.md: %v", files)
	}
	for _, b := range blocks {
		if strings.TrimSpace(b.Text) == "" {
			t.Errorf("%s: empty block", b)
		}
	}
}
