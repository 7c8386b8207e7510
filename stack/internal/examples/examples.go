// Package examples reads the shell examples of the project's READMEs so that a test can run
// every one of them: the fenced ```sh blocks of README.md and of every other README, each with
// the marker comment that may precede it.
//
// A block runs as it is written unless the line before its fence (blank lines aside) is a
// marker, an HTML comment that readers of the rendered page do not see:
//
//	<!-- example: KIND[ KIND...] [-- why] -->
//
// The kinds:
//
//	serves       every command of the block runs until Ctrl-C (`make run`, `genailab up`):
//	             the test starts it, waits for "genailab is up.", and interrupts it; the first
//	             one of a file stays up as the stack the file's later blocks talk to
//	needs-sdcpp  needs a real stable-diffusion.cpp and a model file; the test gives it the one
//	             the engine tests use (on PATH, the tiny model where the block expects its file)
//	needs-network  fetches from the internet: checked (bash -n), not run
//	lab          needs a lab (systemd, Kubernetes, Docker, remote hosts). With on:NAME[,NAME...]
//	             it runs, as root, on those machines of the stand-in lab (stack/internal/labhost:
//	             Debian machines booting their own systemd, on a private network with the
//	             addresses and names the recipe uses), in the order the machines are named;
//	             without it, it is checked (bash -n, every repository path it names exists)
//	dry-run      a `make` target too big for a test (`make ci` runs this test): run as `make -n`
package examples

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The kinds a marker may name.
const (
	Serves       = "serves"
	NeedsSDCPP   = "needs-sdcpp"
	NeedsNetwork = "needs-network"
	Lab          = "lab"
	DryRun       = "dry-run"
)

var kinds = []string{Serves, NeedsSDCPP, NeedsNetwork, Lab, DryRun}

// Block is one fenced sh block.
type Block struct {
	File  string   // path relative to the repository root
	Line  int      // line of the opening fence (1-based)
	Kinds []string // from the marker; empty: run as written
	On    []string // lab blocks: the stand-in lab machines it runs on (on:NAME,...)
	Why   string   // the marker's explanation, if any
	Text  string   // the block's content, without the fences
}

// Is reports whether the block's marker names kind.
func (b Block) Is(kind string) bool { return slices.Contains(b.Kinds, kind) }

// Runs reports whether the test runs the block (literally or with its stand-in) rather than
// only checking it.
func (b Block) Runs() bool { return !b.Is(NeedsNetwork) && (!b.Is(Lab) || len(b.On) > 0) }

// String names the block for test output: file:line.
func (b Block) String() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

var markerRE = regexp.MustCompile(`^<!--\s*example:\s*(.*?)\s*-->$`)

// Extract returns the fenced sh blocks of a Markdown document. A marker that names an unknown
// kind, a marker not followed by an sh block, or an unclosed fence is an error: a typo must not
// silently run a block that was meant to be skipped, nor skip one.
func Extract(file string, md []byte) ([]Block, error) {
	var (
		blocks  []Block
		pending *Block // the marker waiting for its block
		cur     *Block
		body    strings.Builder
		fence   string
	)
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur == nil && fence != "" { // inside a fence of another language
			if trimmed == fence {
				fence = ""
			}
			continue
		}
		if cur != nil {
			if trimmed == fence {
				cur.Text = body.String()
				blocks = append(blocks, *cur)
				cur, fence = nil, ""
				body.Reset()
				continue
			}
			body.WriteString(line)
			body.WriteByte('\n')
			continue
		}
		if m := markerRE.FindStringSubmatch(trimmed); m != nil {
			b, err := parseMarker(file, n, m[1])
			if err != nil {
				return nil, err
			}
			pending = &b
			continue
		}
		if f, lang, ok := openingFence(trimmed); ok {
			fence = f
			if lang == "sh" {
				b := Block{File: file, Line: n}
				if pending != nil {
					b.Kinds, b.Why, b.On = pending.Kinds, pending.Why, pending.On
				}
				cur = &b
			} else if pending != nil {
				return nil, fmt.Errorf("%s:%d: the example marker of line %d precedes a %q block, not sh", file, n, pending.Line, lang)
			}
			pending = nil
			continue
		}
		if trimmed != "" && pending != nil {
			return nil, fmt.Errorf("%s:%d: an example marker must be followed by a ```sh block", file, pending.Line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if cur != nil || fence != "" {
		return nil, fmt.Errorf("%s: unclosed code fence", file)
	}
	if pending != nil {
		return nil, fmt.Errorf("%s:%d: an example marker must be followed by a ```sh block", file, pending.Line)
	}
	return blocks, nil
}

func parseMarker(file string, line int, spec string) (Block, error) {
	spec, why, _ := strings.Cut(spec, "--")
	b := Block{File: file, Line: line, Why: strings.TrimSpace(why)}
	for _, k := range strings.Fields(spec) {
		if on, ok := strings.CutPrefix(k, "on:"); ok {
			b.On = strings.Split(on, ",")
			if slices.Contains(b.On, "") {
				return Block{}, fmt.Errorf("%s:%d: %q names an empty machine", file, line, k)
			}
			continue
		}
		if !slices.Contains(kinds, k) {
			return Block{}, fmt.Errorf("%s:%d: unknown example kind %q (known: %s)", file, line, k, strings.Join(kinds, ", "))
		}
		b.Kinds = append(b.Kinds, k)
	}
	if len(b.Kinds) == 0 {
		return Block{}, fmt.Errorf("%s:%d: an example marker names no kind", file, line)
	}
	if len(b.On) > 0 && !slices.Contains(b.Kinds, Lab) {
		return Block{}, fmt.Errorf("%s:%d: on: names machines of the stand-in lab: only for lab blocks", file, line)
	}
	return b, nil
}

// openingFence recognises ``` or ~~~ fences and returns the closing fence and the language.
func openingFence(line string) (fence, lang string, ok bool) {
	for _, f := range []string{"```", "~~~"} {
		if strings.HasPrefix(line, f) {
			n := len(line) - len(strings.TrimLeft(line, f[:1]))
			return line[:n], strings.TrimSpace(line[n:]), true
		}
	}
	return "", "", false
}

// Files returns the READMEs of the repository at root whose examples are users' (relative
// paths, sorted, README.md first): every README*.md outside hidden directories, testdata
// (captured reference material) and node_modules.
func Files(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, "README") && strings.HasSuffix(name, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find READMEs: %w", err)
	}
	slices.SortFunc(out, func(a, b string) int {
		if (a == "README.md") != (b == "README.md") {
			if a == "README.md" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return out, nil
}

// Load extracts the blocks of every file Files finds under root.
func Load(root string) ([]Block, error) {
	files, err := Files(root)
	if err != nil {
		return nil, err
	}
	var all []Block
	for _, f := range files {
		md, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, fmt.Errorf("read README: %w", err)
		}
		bs, err := Extract(f, md)
		if err != nil {
			return nil, err
		}
		all = append(all, bs...)
	}
	return all, nil
}

// Commands splits a block into its commands: lines joined over trailing backslashes, without
// comment lines and blank lines. Only serves blocks need it (each command is its own program);
// other blocks run whole.
func Commands(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimSuffix(t, `\`))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(t)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// statusRE finds the HTTP status a comment announces: "# HTTP 400 {...}" or "# → 401".
var statusRE = regexp.MustCompile(`(?:HTTP|→)\s*([1-5][0-9][0-9])\b`)

// ExpectedStatuses returns the HTTP error statuses (400 and above) the block's comments
// announce, one per comment (its first), in order: the answers a literal run must get.
func ExpectedStatuses(text string) []int {
	var out []int
	for _, line := range strings.Split(text, "\n") {
		_, comment, ok := strings.Cut(line, "#")
		if !ok {
			continue
		}
		if m := statusRE.FindStringSubmatch(comment); m != nil {
			var code int
			fmt.Sscanf(m[1], "%d", &code)
			if code >= 400 {
				out = append(out, code)
			}
		}
	}
	return out
}

// repoPathRE finds words that name files of the repository (deploy/..., scripts/..., ...).
var repoPathRE = regexp.MustCompile(`(?:^|[\s=])((?:deploy|scripts|proto|services|clients|pkg|stack|tools)/[A-Za-z0-9_./*{},-]*)`)

// RepoPaths returns the repository paths a block names (globs included), for blocks that are
// checked rather than run.
func RepoPaths(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		for _, m := range repoPathRE.FindAllStringSubmatch(line, -1) {
			p := strings.TrimRight(m[1], ".,")
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}
