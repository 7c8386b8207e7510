package sdcli

import (
	"bytes"
	"errors"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdcapture"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdimage"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

// The test binary doubles as the stand-in (helper-process pattern): with SDCLI_TEST_HELPER=1
// it runs sd-cli's Main instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("SDCLI_TEST_HELPER") == "1" {
		Main()
	}
	os.Exit(m.Run())
}

const ref = "../testdata/sdcpp"

func readRef(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ref, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// workdir holds the files the capture runs used: tinysd.gguf, garbage.bin, truncated.gguf.
func workdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := sdmodel.WriteTestModel(filepath.Join(dir, "tinysd.gguf")); err != nil {
		t.Fatal(err)
	}
	if err := sdmodel.WriteTruncatedModel(filepath.Join(dir, "truncated.gguf")); err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, "garbage.bin"), garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type run struct {
	stdout, stderr []byte
	rc             int // shell style: 128+N when killed by signal N
}

func command(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Args = append([]string{"sd-cli"}, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SDCLI_TEST_HELPER=1", "SDSTANDIN_STEP_MS=1", "SDSTANDIN_STAGE_MS=1", "SDSTANDIN_BACKTRACE=gdb")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func shellRC(err error, st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

func runCLI(t *testing.T, dir string, env []string, args ...string) run {
	t.Helper()
	cmd := command(dir, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return run{stdout: out.Bytes(), stderr: errb.Bytes(), rc: shellRC(err, cmd.ProcessState)}
}

var gen64 = []string{"-m", "tinysd.gguf", "-p", "a red fox", "-W", "64", "-H", "64", "--steps", "2", "-s", "42"}

func with(base []string, extra ...string) []string {
	return append(append([]string(nil), base...), extra...)
}

// replace sets flag's value in a copy of base (or appends it).
func replace(base []string, flag, value string) []string {
	out := append([]string(nil), base...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

func without(base []string, flag string) []string {
	var out []string
	for i := 0; i < len(base); i++ {
		if base[i] == flag {
			i++
			continue
		}
		out = append(out, base[i])
	}
	return out
}

// cliCases reproduces every captured sd-cli run with its arguments (see the captures' README).
var cliCases = []struct {
	name     string
	args     []string
	maskSeed bool
}{
	{"gen64", with(gen64, "-o", "runs/cli/gen64.png"), false},
	{"gen64b", with(gen64, "-o", "runs/cli/gen64b.png"), false},
	{"gen64v", with(gen64, "-o", "runs/cli/gen64v.png", "-v"), false},
	{"gen64color", with(gen64, "-o", "runs/cli/gen64color.png", "--color"), false},
	{"gen128", with(replace(replace(replace(gen64, "-W", "128"), "-H", "128"), "--steps", "20"), "-o", "runs/cli/gen128.png"), false},
	{"gen64seed7", with(replace(gen64, "-s", "7"), "-o", "runs/cli/gen64seed7.png"), false},
	{"gen64rand", with(replace(gen64, "-s", "-1"), "-o", "runs/cli/gen64rand.png"), true},
	{"gen64batch2", with(gen64, "-b", "2", "-o", "runs/cli/gen64batch2.png"), false},
	{"full512", with(replace(replace(replace(gen64, "-W", "512"), "-H", "512"), "--steps", "30"), "-o", "runs/cli/full512.png"), false},
	{"f_missing_model", with(replace(gen64, "-m", "does-not-exist.gguf"), "-o", "runs/cli/f_missing_model.png"), false},
	{"f_garbage_model", with(replace(gen64, "-m", "garbage.bin"), "-o", "runs/cli/f_garbage_model.png"), false},
	{"f_truncated_model", with(replace(gen64, "-m", "truncated.gguf"), "-o", "runs/cli/f_truncated_model.png"), false},
	{"f_no_model", without(with(gen64, "-o", "runs/cli/f_no_model.png"), "-m"), false},
	{"f_unknown_flag", with(gen64, "--foo"), false},
	{"f_missing_value", with(without(gen64, "-W"), "-W"), false},
	{"f_bad_sampler", with(gen64, "--sampling-method", "foo"), false},
	{"f_bad_scheduler", with(gen64, "--scheduler", "foo"), false},
	{"f_steps0", replace(gen64, "--steps", "0"), false},
	{"f_nonnumeric_width", replace(gen64, "-W", "abc"), false},
	{"f_width60", with(replace(gen64, "-W", "60"), "-o", "runs/cli/f_width60.png"), false},
	{"f_width72", with(replace(gen64, "-W", "72"), "-o", "runs/cli/f_width72.png"), false},
	{"f_width100", with(replace(replace(gen64, "-W", "100"), "-H", "100"), "-o", "runs/cli/f_width100.png"), false},
	{"f_cfg0", with(gen64, "--cfg-scale", "0", "-o", "runs/cli/f_cfg0.png"), false},
	{"f_no_prompt", with(without(gen64, "-p"), "-o", "runs/cli/f_no_prompt.png"), false},
	{"f_bad_outdir", with(gen64, "-o", "nodir/x/out.png"), false},
	{"f_unwritable_out", with(gen64, "-o", "/proc/nope/out.png"), false},
}

func helpIdentical(t *testing.T) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(string(readRef(t, "cli/stdout-identical-to-help.txt")), "\n") {
		if name, ok := strings.CutSuffix(strings.TrimSpace(l), ".stdout"); ok {
			out[name] = true
		}
	}
	return out
}

// pngRecord is one line of png-sha256.txt: size of the captured PNG.
func pngSizes(t *testing.T) map[string][2]int {
	out := map[string][2]int{}
	for _, l := range strings.Split(string(readRef(t, "cli/png-sha256.txt")), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 {
			continue
		}
		wh := strings.Split(f[3], "x")
		w, _ := strconv.Atoi(wh[0])
		h, _ := strconv.Atoi(wh[1])
		out[strings.TrimSuffix(f[4], ".png")] = [2]int{w, h}
	}
	return out
}

func pngOf(t *testing.T, path string) ([2]int, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read output: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	chunks, err := sdimage.TextChunks(data)
	if err != nil {
		t.Fatal(err)
	}
	s := img.Bounds().Size()
	return [2]int{s.X, s.Y}, chunks["parameters"]
}

// Every captured sd-cli run, replayed against the stand-in with the same arguments: exit code,
// stderr bytes, stdout structure, bar format, and the PNGs written.
func TestCLIMatchesCaptures(t *testing.T) {
	helpSame := helpIdentical(t)
	sizes := pngSizes(t)
	help := readRef(t, "help/sd-cli.help.stdout")
	for _, c := range cliCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := workdir(t)
			got := runCLI(t, dir, nil, c.args...)
			wantRC, _ := strconv.Atoi(strings.TrimSpace(string(readRef(t, "cli/"+c.name+".rc"))))
			if got.rc != wantRC {
				t.Errorf("rc = %d, want %d; stderr %q", got.rc, wantRC, got.stderr)
			}
			if want := readRef(t, "cli/"+c.name+".stderr"); !bytes.Equal(got.stderr, want) {
				t.Errorf("stderr:\n got %q\nwant %q", got.stderr, want)
			}
			if helpSame[c.name] {
				if !bytes.Equal(got.stdout, help) {
					t.Errorf("stdout is not the captured help text (%d bytes, want %d)", len(got.stdout), len(help))
				}
				return
			}
			want := readRef(t, "cli/"+c.name+".stdout")
			opt := sdcapture.Options{MaskSeed: c.maskSeed}
			gt, err := sdcapture.Tokens(got.stdout, opt)
			if err != nil {
				t.Fatalf("stand-in stdout: %v", err)
			}
			wt, err := sdcapture.Tokens(want, opt)
			if err != nil {
				t.Fatalf("captured stdout: %v", err)
			}
			if d := sdcapture.Diff(gt, wt); d != "" {
				t.Errorf("stdout structure differs from the capture:\n%s", d)
			}
			for _, u := range sdcapture.BarUpdates(got.stdout) {
				if !sdcapture.BarUpdate.MatchString(u) {
					t.Errorf("bar update %q does not have the captured format", u)
				}
			}
			checkPNGs(t, c.name, c.args, dir, sizes)
		})
	}
}

func checkPNGs(t *testing.T, name string, args []string, dir string, sizes map[string][2]int) {
	out := ""
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-o" {
			out = args[i+1]
		}
	}
	if out == "" {
		return
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(dir, out)
	}
	files := map[string]string{name: out}
	if strings.Contains(name, "batch2") {
		files = map[string]string{name + "_0": strings.TrimSuffix(out, ".png") + "_0.png", name + "_1": strings.TrimSuffix(out, ".png") + "_1.png"}
	}
	for key, path := range files {
		want, captured := sizes[key]
		if name == "f_bad_outdir" {
			want, captured = [2]int{64, 64}, true
		}
		if !captured {
			if _, err := os.Stat(path); err == nil {
				t.Errorf("%s: wrote %s, the real one wrote nothing", key, path)
			}
			continue
		}
		size, params := pngOf(t, path)
		if size != want {
			t.Errorf("%s: PNG is %v, want %v", key, size, want)
		}
		if _, err := os.Stat(filepath.Join(ref, "cli", key+".png")); err == nil {
			_, wantParams := pngOf(t, filepath.Join(ref, "cli", key+".png"))
			if params != wantParams {
				t.Errorf("%s: parameters\n got %q\nwant %q", key, params, wantParams)
			}
		}
	}
}
