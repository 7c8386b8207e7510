package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/examples"
)

// TestREADMEExamples runs every fenced sh block of every README (examples.Load), file by file
// and in order, as a reader would paste them into a shell at the repository root. What the test
// changes, and nothing else:
//
//   - Ports: the stacks run on free ports (GENAILAB_EPHEMERAL_PORTS=true and
//     GENAILAB_GATEWAY_ADDR=127.0.0.1:0, which `genailab up` reads), and every
//     "127.0.0.1:8080" (gateway) and "127.0.0.1:8081" (seed wrapper) of a block is replaced by
//     the address the file's stack printed in its banner.
//   - Data: `make run` keeps its data in GENAILAB_DATA_DIR (a temporary directory), and the
//     other blocks run in a scratch copy of the repository root (every entry linked, bin/ a
//     directory of links to the binaries `make run` built), so .data, pki/ and bin/ files the
//     examples make stay out of the checkout.
//   - curl is a wrapper (curlShim) that runs the real curl, keeps each answer's status and body
//     for the checks, and ends a followed stream (?follow=true) after 3 s as a reader would.
//   - The kinds of examples.Block: serves blocks are started and interrupted, needs-sdcpp blocks
//     get the engine tests' stable-diffusion.cpp on PATH and its tiny model as
//     ~/models/sd-v1-5-q8_0.gguf (HOME is a temporary directory), dry-run blocks run `make -n`,
//     needs-network blocks that only download model files (*.gguf) run against a local stand-in
//     of the internet (every https://host of the block replaced by an httptest server that
//     answers the generated tiny model), other needs-network blocks and lab blocks without
//     machines are only checked (bash -n; the repository paths they name exist).
//   - lab blocks with on:MACHINES run as root on those machines of a stand-in lab (lab_test.go:
//     Debian machines booting their own systemd under systemd-nspawn, with the recipe's
//     addresses and names on a private network), in the scratch directory, which they share.
//
// A block passes when bash exits 0, every HTTP error status it got is one its comments announce
// ("# HTTP 400 ...", "# → 401") and every announced one was got, and every image it received is
// a PNG (the seed contract's answer must hold one).
func TestREADMEExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts whole stacks: not in -short")
	}
	testenv.RequireLlamaServer(t) // `make run` would otherwise install it from the network
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := examples.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, root)
	var files []string
	for _, b := range blocks {
		if !slices.Contains(files, b.File) {
			files = append(files, b.File)
		}
	}
	for _, f := range files {
		t.Run(strings.ReplaceAll(f, "/", "_"), func(t *testing.T) {
			var st *serving     // the file's stack
			var lab *standInLab // the file's stand-in lab
			defer func() {
				if st != nil {
					st.stop(t)
				}
				if lab != nil {
					lab.close(t)
				}
			}()
			for _, b := range blocks {
				if b.File != f {
					continue
				}
				if !b.Runs() && !standsIn(b) {
					r.check(t, b)
					continue
				}
				if b.Is(examples.Lab) {
					if lab == nil {
						lab = r.bootLab(t, f, blocks)
					}
					r.runLab(t, b, lab)
					continue
				}
				if b.Is(examples.NeedsSDCPP) && !r.haveSD(t, b) {
					continue
				}
				if b.Is(examples.Serves) {
					for i, cmd := range examples.Commands(b.Text) {
						s := r.serve(t, b, cmd)
						if st == nil && i == 0 {
							st = s
							continue
						}
						s.stop(t)
					}
					continue
				}
				r.run(t, b, st)
			}
		})
	}
}

type runner struct {
	root, scratch, tmp string
	shimDir, realCurl  string
	env                []string
	sd                 *testenv.RealSD
	sdErr              error
	// internet is the stand-in of the hosts needs-network blocks download models from.
	internet string
}

func newRunner(t *testing.T, root string) *runner {
	tmp := t.TempDir()
	r := &runner{root: root, tmp: tmp, scratch: filepath.Join(tmp, "repo"), shimDir: filepath.Join(tmp, "shim")}
	var err error
	if r.realCurl, err = exec.LookPath("curl"); err != nil {
		t.Fatalf("the examples need curl: %v", err)
	}
	if err := os.MkdirAll(r.shimDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.shimDir, "curl"), []byte(curlShim), 0o755); err != nil {
		t.Fatal(err)
	}
	// The scratch repository: every top-level entry linked, except what the examples write.
	if err := os.MkdirAll(filepath.Join(r.scratch, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "bin" && n != ".data" && n != "pki" && n != ".git" {
			if err := os.Symlink(filepath.Join(root, n), filepath.Join(r.scratch, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The go command keeps its caches where it had them (HOME changes for needs-sdcpp).
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	vals := strings.Fields(string(goenv))
	// A reader's shell: no GENAILAB_ settings but the llama-server the tests use, and none of
	// the make variables of a `make test` that runs this test.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GENAILAB_") && name != "GENAILAB_LLAMA_SERVER" ||
			name == "MAKEFLAGS" || name == "MAKELEVEL" || name == "MFLAGS" {
			continue
		}
		r.env = append(r.env, kv)
	}
	// The internet of needs-network blocks: any *.gguf is the generated tiny model.
	gguf := filepath.Join(tmp, "tiny.gguf")
	if err := ggufgen.WriteFile(gguf, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasSuffix(req.URL.Path, ".gguf") {
			http.NotFound(w, req)
			return
		}
		http.ServeFile(w, req, gguf)
	}))
	t.Cleanup(srv.Close)
	r.internet = srv.URL
	r.env = append(r.env,
		"PATH="+r.shimDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOCACHE="+vals[0], "GOMODCACHE="+vals[1], "GOPATH="+vals[2],
		"GENAILAB_EPHEMERAL_PORTS=true", "GENAILAB_GATEWAY_ADDR=127.0.0.1:0",
		"GENAILAB_DATA_DIR="+filepath.Join(tmp, "make-run-data"),
		"EXAMPLE_REAL_CURL="+r.realCurl)
	return r
}

// curlShim is the curl the examples run: the real one, with each answer's headers and body
// kept in $EXAMPLE_LOG (one record per call, named by time so they sort in call order).
const curlShim = `#!/usr/bin/env bash
# curl for the README examples test: the real curl; keeps each answer's headers and body for
# the test; ends a followed stream (follow=true) after 3 s, as a reader would with Ctrl-C.
follow=
for a in "$@"; do [[ $a == *follow=true* ]] && follow=1; done
rec="$EXAMPLE_LOG/$(date +%s%N)"
printf '%s\n' "$@" > "$rec.args"
[[ -n $follow ]] && set -- --max-time 3 "$@"
"$EXAMPLE_REAL_CURL" -D "$rec.headers" "$@" | tee "$rec.body"
rc=${PIPESTATUS[0]}
[[ -n $follow && $rc == 28 ]] && rc=0
exit $rc
`

func (r *runner) haveSD(t *testing.T, b examples.Block) bool {
	t.Helper()
	if r.sd == nil && r.sdErr == nil {
		sd, err := testenv.FindRealSD()
		if err != nil {
			r.sdErr = err
		} else {
			r.sd = &sd
			home := filepath.Join(r.tmp, "home")
			if err := os.MkdirAll(filepath.Join(home, "models"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(sd.Model, filepath.Join(home, "models", "sd-v1-5-q8_0.gguf")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r.sdErr == nil {
		return true
	}
	if !errors.Is(r.sdErr, testenv.ErrMissing) || os.Getenv(testenv.RequireSDCPPEnv) == "1" {
		t.Fatalf("%s needs stable-diffusion.cpp: %v", b, r.sdErr)
	}
	t.Logf("%s: not run: %v (set %s=1 to make this a failure)", b, r.sdErr, testenv.RequireSDCPPEnv)
	return false
}

// blockEnv is the environment of one block.
func (r *runner) blockEnv(b examples.Block, logDir string) []string {
	env := append(slices.Clone(r.env), "EXAMPLE_LOG="+logDir)
	if b.Is(examples.NeedsSDCPP) && r.sd != nil {
		env = append(env, "HOME="+filepath.Join(r.tmp, "home"),
			"PATH="+r.shimDir+string(os.PathListSeparator)+r.sd.Dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return env
}

// linkBinaries makes the scratch bin/ show what the checkout's bin/ holds now.
func (r *runner) linkBinaries(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(r.root, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		link := filepath.Join(r.scratch, "bin", e.Name())
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(r.root, "bin", e.Name()), link); err != nil {
			t.Fatal(err)
		}
	}
}

// remoteURLRE finds the scheme and host of URLs that are not the stack's.
var remoteURLRE = regexp.MustCompile(`https?://(?:[a-z0-9-]+\.)+[a-z]{2,}`)

// standsIn reports whether a needs-network block runs against the test's stand-in of the
// internet: when everything it fetches is a model file (*.gguf), which the stand-in serves.
func standsIn(b examples.Block) bool {
	if !b.Is(examples.NeedsNetwork) || b.Is(examples.Lab) {
		return false
	}
	urls := regexp.MustCompile(`https?://(?:[a-z0-9-]+\.)+[a-z]{2,}/[^\s'"]*`).FindAllString(b.Text, -1)
	for _, u := range urls {
		if !strings.HasSuffix(u, ".gguf") {
			return false
		}
	}
	return len(urls) > 0
}

// check is what a block that needs the network or a lab gets: its syntax, and the
// repository files it names.
func (r *runner) check(t *testing.T, b examples.Block) {
	t.Helper()
	if out, err := exec.Command("bash", "-n", "-c", b.Text).CombinedOutput(); err != nil {
		t.Errorf("%s: bash -n: %v\n%s", b, err, out)
	}
	for _, p := range examples.RepoPaths(b.Text) {
		if m, _ := filepath.Glob(filepath.Join(r.root, p)); len(m) == 0 {
			t.Errorf("%s: names %s, which is not in the repository", b, p)
		}
	}
	t.Logf("%s: checked, not run (%s: %s)", b, strings.Join(b.Kinds, " "), b.Why)
}

// serving is a running serves command.
type serving struct {
	block            examples.Block
	cmd              *exec.Cmd
	out              *lines
	exited           chan struct{}
	err              error
	gateway, seedURL string
}

var (
	upLine     = "genailab is up."
	bannerEnd  = "Press Ctrl-C to stop." // the banner's last line
	gatewayRE  = regexp.MustCompile(`REST gateway:\s+http://(\S+)`)
	seedRE     = regexp.MustCompile(`seed HTTP wrapper:\s+http://(\S+)`)
	imagesSdRE = regexp.MustCompile(`images: stable-diffusion\.cpp`)
)

// readyWithin bounds a serves command's start: `make run` may compile every binary, so it
// gets what the test's -timeout leaves, less three minutes for the rest of the file.
func readyWithin(t *testing.T) time.Duration {
	if dl, ok := t.Deadline(); ok {
		return max(time.Until(dl)-3*time.Minute, time.Minute)
	}
	return 30 * time.Minute
}

// serve starts a serves command (in the checkout for `make run`, else in the scratch
// repository) and waits for the stack's banner.
func (r *runner) serve(t *testing.T, b examples.Block, command string) *serving {
	t.Helper()
	dir := r.scratch
	if strings.HasPrefix(command, "make ") {
		dir = r.root
	} else {
		r.linkBinaries(t)
	}
	logDir := t.TempDir()
	cmd := exec.Command("bash", "-c", command)
	cmd.Dir, cmd.Env = dir, r.blockEnv(b, logDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %s: %v", b, command, err)
	}
	s := &serving{block: b, cmd: cmd, out: &lines{}, exited: make(chan struct{})}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			l := sc.Text()
			s.out.add(l)
			if strings.TrimSpace(l) == bannerEnd {
				once.Do(func() { close(up) })
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		s.err = cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	within := readyWithin(t)
	select {
	case <-up:
	case <-s.exited:
		t.Fatalf("%s: %s exited before the stack was up: %v\n%s", b, command, s.err, s.out)
	case <-time.After(within):
		s.stop(t)
		t.Fatalf("%s: %s: no %q within %s\n%s", b, command, bannerEnd, within, s.out)
	}
	banner := s.out.String()
	if !strings.Contains(banner, upLine) {
		t.Fatalf("%s: %s: no %q before %q\n%s", b, command, upLine, bannerEnd, banner)
	}
	if m := gatewayRE.FindStringSubmatch(banner); m != nil {
		s.gateway = m[1]
	}
	if m := seedRE.FindStringSubmatch(banner); m != nil {
		s.seedURL = m[1]
	}
	if s.gateway == "" {
		t.Fatalf("%s: %s: no gateway address in the banner\n%s", b, command, banner)
	}
	if b.Is(examples.NeedsSDCPP) && !imagesSdRE.MatchString(banner) {
		t.Errorf("%s: %s: the banner does not say stable-diffusion.cpp runs the images\n%s", b, command, banner)
	}
	// Without a model (a fresh data directory), with or without sd.cpp, the quick start's
	// images come from the demo engine, started at boot: the README's image curl must work.
	if !b.Is(examples.NeedsSDCPP) && !strings.Contains(banner, "images: the demo stand-in") {
		t.Errorf("%s: %s: the banner does not say the demo engine runs the images\n%s", b, command, banner)
	}
	t.Logf("%s: %s: up in %s, gateway %s", b, command, time.Since(start).Round(100*time.Millisecond), s.gateway)
	return s
}

// stop presses Ctrl-C (SIGINT to the command's process group) and waits for it to end.
func (s *serving) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(90 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		t.Errorf("%s: did not stop within 90 s of Ctrl-C\n%s", s.block, s.out)
		return
	}
	if !strings.Contains(s.out.String(), "stopping genailab...") {
		t.Errorf("%s: Ctrl-C did not stop the stack cleanly (%v)\n%s", s.block, s.err, s.out)
	}
}

// run runs a block with bash -e, against the file's stack.
func (r *runner) run(t *testing.T, b examples.Block, st *serving) {
	t.Helper()
	text := b.Text
	for addr, to := range map[string]func() string{
		"127.0.0.1:8080": func() string { return st.gateway },
		"127.0.0.1:8081": func() string { return st.seedURL },
	} {
		if !strings.Contains(text, addr) {
			continue
		}
		if st == nil {
			t.Fatalf("%s talks to %s, but no serves block of %s started a stack before it", b, addr, b.File)
		}
		text = strings.ReplaceAll(text, addr, to())
	}
	if b.Is(examples.DryRun) {
		text = regexp.MustCompile(`(?m)^make `).ReplaceAllString(text, "make -n ")
	}
	if b.Is(examples.NeedsNetwork) {
		text = remoteURLRE.ReplaceAllString(text, r.internet)
	}
	r.linkBinaries(t)
	logDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", text)
	cmd.Dir, cmd.Env = r.scratch, r.blockEnv(b, logDir)
	if b.Is(examples.DryRun) {
		cmd.Dir = r.root
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Errorf("%s: %v\n--- block as run:\n%s--- output:\n%s", b, err, text, tailOf(out.String(), 4000))
		return
	}
	n := verifyCalls(t, b, logDir)
	t.Logf("%s: ok in %s (%d HTTP calls)", b, time.Since(start).Round(100*time.Millisecond), n)
}

// verifyCalls checks the curl calls a block made (recorded in logDir): every HTTP error status
// is one its comments announce and the other way round, every image is a PNG. It returns the
// number of calls.
func verifyCalls(t *testing.T, b examples.Block, logDir string) int {
	t.Helper()
	calls, err := readCalls(logDir)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var got []int
	for _, c := range calls {
		if c.status >= 400 {
			got = append(got, c.status)
		}
		if err := c.checkImages(); err != nil {
			t.Errorf("%s: curl %s: %v", b, strings.Join(c.args, " "), err)
		}
	}
	want := examples.ExpectedStatuses(b.Text)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		var desc []string
		for _, c := range calls {
			desc = append(desc, fmt.Sprintf("  %d  curl %s  →  %s", c.status, strings.Join(c.args, " "), tailOf(string(c.body), 200)))
		}
		t.Errorf("%s: HTTP error statuses %v, the block's comments announce %v:\n%s", b, got, want, strings.Join(desc, "\n"))
	}
	return len(calls)
}

// call is one curl run of a block.
type call struct {
	args   []string
	status int
	body   []byte
}

func readCalls(dir string) ([]call, error) {
	recs, err := filepath.Glob(filepath.Join(dir, "*.args"))
	if err != nil {
		return nil, err
	}
	slices.Sort(recs)
	var calls []call
	for _, a := range recs {
		base := strings.TrimSuffix(a, ".args")
		args, err := os.ReadFile(a)
		if err != nil {
			return nil, err
		}
		c := call{args: strings.Split(strings.TrimSuffix(string(args), "\n"), "\n")}
		headers, _ := os.ReadFile(base + ".headers")
		for _, l := range strings.Split(string(headers), "\n") {
			// The last status line counts (after a 100 Continue, for example).
			if f := strings.Fields(l); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
				c.status, _ = strconv.Atoi(f[1])
			}
		}
		if c.body, err = os.ReadFile(base + ".body"); err != nil {
			return nil, err
		}
		calls = append(calls, c)
	}
	return calls, nil
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// checkImages checks that every "image" ("png" in a job, "b64_json" in OpenAI's answer) is a
// base64 PNG, and that a successful seed-contract answer has one.
func (c call) checkImages() error {
	n := 0
	for _, line := range bytes.Split(c.body, []byte("\n")) {
		var v any
		if json.Unmarshal(line, &v) != nil {
			continue
		}
		var err error
		walkImages(v, func(s string) {
			n++
			raw, e := base64.StdEncoding.DecodeString(s)
			if e != nil || !bytes.HasPrefix(raw, pngMagic) {
				err = fmt.Errorf("an image that is not a base64 PNG (%d characters)", len(s))
			}
		})
		if err != nil {
			return err
		}
	}
	seed := slices.ContainsFunc(c.args, func(a string) bool { return strings.HasSuffix(a, "/v1/images/generations") })
	if seed && c.status == 200 && n == 0 {
		return errors.New("the seed contract's 200 answer holds no image")
	}
	return nil
}

func walkImages(v any, f func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "image" || k == "png" || k == "b64_json") && s != "" {
				f(s)
				continue
			}
			walkImages(x, f)
		}
	case []any:
		for _, x := range v {
			walkImages(x, f)
		}
	}
}

func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// lines collects a command's output.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tailOf(l.b.String(), 20000)
}
