package main_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSystemInfo(t *testing.T) {
	r := ok(t, "system", "info")
	for _, want := range []string{"Host:", "CPU:", "Recommended threads:", "RAM:", "Disk:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("system info lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "GPU") {
		t.Errorf("system info says nothing about GPUs:\n%s", r.stdout)
	}
	golden(t, "system-info", ok(t, "system", "info", "--json").stdout, "model", "gpus", "driverVersion", "cudaVersion")
}

func TestModelsListPresetsUsageVerify(t *testing.T) {
	r := ok(t, "models", "list")
	if !regexp.MustCompile(`(?m)^llm\s+tiny-random-llama\s+\d+(\.\d)? KiB\s+llama`).MatchString(r.stdout) {
		t.Errorf("models list:\n%s", r.stdout)
	}
	golden(t, engineGolden("models-list"), ok(t, "models", "list", "--json").stdout, "sha256", "sizeBytes", "sourceUrl", "parameterCount", "tensorDataSizeBytes")
	golden(t, "models-presets", ok(t, "models", "presets", "--json").stdout)
	if r := ok(t, "models", "presets", "--type", "diffusion"); strings.Contains(r.stdout, "\nllm ") || !strings.Contains(r.stdout, "diffusion ") {
		t.Errorf("presets --type diffusion:\n%s", r.stdout)
	}
	golden(t, engineGolden("models-usage"), ok(t, "models", "usage", "--json").stdout, "sizeBytes", "partialBytes")
	golden(t, "models-usage-llm", ok(t, "models", "usage", "--type", "llm", "--json").stdout, "sizeBytes", "partialBytes")

	r = ok(t, "models", "verify", "tiny-random-llama")
	if !strings.Contains(r.stdout, "tiny-random-llama: all 1 files match.") || !regexp.MustCompile(`(?m)^ok\s+tiny-random-llama.gguf`).MatchString(r.stdout) {
		t.Errorf("verify:\n%s", r.stdout)
	}
	golden(t, "models-verify", ok(t, "models", "verify", "tiny-random-llama", "--json").stdout, "expectedSha256", "actualSha256", "expectedSizeBytes", "actualSizeBytes")

	fails(t, 1, `model "nope" not found (neither an llm nor a diffusion model)`, "models", "verify", "nope")
	fails(t, 1, "model not found: nope", "models", "verify", "nope", "--type", "llm")
	fails(t, 1, `model "nope" not found`, "models", "delete", "nope")
}

// slowFile serves data at about rate bytes per second (Range requests honoured by http.ServeContent).
func slowFile(t *testing.T, data []byte, rate int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(&throttled{w: w, rate: rate}, r, "model.gguf", time.Time{}, strings.NewReader(string(data)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type throttled struct {
	w    http.ResponseWriter
	rate int
}

func (t *throttled) Header() http.Header  { return t.w.Header() }
func (t *throttled) WriteHeader(code int) { t.w.WriteHeader(code) }
func (t *throttled) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := min(len(p), t.rate/20)
		m, err := t.w.Write(p[:chunk])
		n += m
		if err != nil {
			return n, err
		}
		t.w.(http.Flusher).Flush()
		p = p[chunk:]
		time.Sleep(50 * time.Millisecond)
	}
	return n, nil
}

func tinyModel(t *testing.T) []byte {
	t.Helper()
	needStack(t)
	b, err := os.ReadFile(filepath.Join(stack.DataDir, "models", "llm", "tiny-random-llama", "tiny-random-llama.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestModelsDownloadVerifyDelete downloads a real GGUF from a local HTTP server (slowly,
// so that the progress shows), finds it listed and verified, damages it on disk, sees
// verify fail, and deletes it.
func TestModelsDownloadVerifyDelete(t *testing.T) {
	data := tinyModel(t)
	srv := slowFile(t, data, 1<<20) // ~0.5 s
	r := ok(t, "models", "download", "--type", "llm", "--id", "copy-model", srv.URL+"/copy-model.gguf")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[len(lines)-1], "Downloaded llm model copy-model: 1 files, ") {
		t.Fatalf("download output:\n%s", r.stdout)
	}
	progress := regexp.MustCompile(`^model: \d+(\.\d)? [KM]?i?B of 525\.5 KiB \(\d+%\), ([\d.]+ [KM]?i?B/s|-), ETA `)
	for _, l := range lines[:len(lines)-1] {
		if !progress.MatchString(l) {
			t.Errorf("progress line %q", l)
		}
	}
	if r := ok(t, "models", "list", "--type", "llm"); !strings.Contains(r.stdout, "copy-model") {
		t.Errorf("downloaded model not listed:\n%s", r.stdout)
	}
	ok(t, "models", "verify", "copy-model")

	// Damage one byte: verify reports it and exits 1.
	path := filepath.Join(stack.DataDir, "models", "llm", "copy-model", "copy-model.gguf")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = fails(t, 1, "verification failed: 1 of 1 files of copy-model do not match their record", "models", "verify", "copy-model")
	if !regexp.MustCompile(`(?m)^FAILED\s+copy-model.gguf`).MatchString(r.stdout) {
		t.Errorf("verify report:\n%s", r.stdout)
	}

	r = ok(t, "models", "delete", "copy-model")
	if !strings.HasPrefix(r.stdout, "Deleted llm model copy-model (freed 52") {
		t.Errorf("delete: %q", r.stdout)
	}
	fails(t, 1, `model "copy-model" not found`, "models", "verify", "copy-model")

	// --json: progress messages, then the model, one document per line.
	r = ok(t, "models", "download", "--type", "llm", "--id", "copy-json", srv.URL+"/copy-json.gguf", "--json")
	docs := jsonLines(t, r.stdout)
	if _, isProgress := docs[0]["progress"]; !isProgress {
		t.Errorf("first line %v: want progress", docs[0])
	}
	last, isModel := docs[len(docs)-1]["model"].(map[string]any)
	if !isModel || last["id"] != "copy-json" {
		t.Errorf("last line %v: want the model", docs[len(docs)-1])
	}
	ctl(t, "models", "delete", "copy-json")
}

// Regression: without internet, 'models download' said "cannot reach the llm service at
// 127.0.0.1:50051: no such host (is genailab running there?...)" while the service was up and
// it was the download source that could not be reached. The service's own answer (its
// ErrorInfo reason SOURCE_UNAVAILABLE) is reported: a name that does not resolve, a host that
// refuses the connection.
func TestModelsDownloadFromAnUnreachableSourceBlamesTheSource(t *testing.T) {
	needStack(t)
	llm := "the llm service at " + stack.Addrs["llm"] + " cannot reach the download source: "
	for url, cause := range map[string]string{
		"http://genailab-test.invalid/m.gguf": "genailab-test.invalid", // the lookup fails (no such host, or no DNS at all)
		"http://127.0.0.1:1/m.gguf":           "connect: connection refused",
	} {
		r := fails(t, 1, llm, "models", "download", "--type", "llm", "--id", "unreachable", url)
		if !strings.Contains(r.stderr, "source unavailable: HEAD "+url+": ") || !strings.Contains(r.stderr, cause) {
			t.Errorf("%s: the service's words are missing: %q", url, r.stderr)
		}
		if strings.Contains(r.stderr, "cannot reach the llm service") || strings.Contains(r.stderr, "is genailab running") {
			t.Errorf("%s: the service is blamed: %q", url, r.stderr)
		}
	}
	if r := ok(t, "models", "list", "--type", "llm"); strings.Contains(r.stdout, "unreachable") {
		t.Errorf("a failed download is listed:\n%s", r.stdout)
	}
}

// TestModelsDownloadInterrupted interrupts a slow download: the download is cancelled on
// the server, its partial data stays for a resume, and the same command resumes it.
func TestModelsDownloadInterrupted(t *testing.T) {
	data := tinyModel(t)
	srv := slowFile(t, data, 100<<10) // ~5 s
	cmd, out, errb := background(t, "models", "download", "--type", "llm", "--id", "resumed", srv.URL+"/resumed.gguf")
	waitFor(t, 20*time.Second, "download progress", func() bool { return strings.Contains(out.String(), "model: ") })
	code := interrupt(t, cmd)
	stderr := errb.String()
	if code != 130 || !strings.Contains(stderr, "cancelled on the server (its partial data is kept") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	r := ok(t, "models", "usage", "--type", "llm", "--json")
	if strings.Contains(r.stdout, `"partialBytes": "0"`) {
		t.Errorf("no partial data kept:\n%s", r.stdout)
	}
	fast := slowFile(t, data, 8<<20)
	r = ok(t, "models", "download", "--type", "llm", "--id", "resumed", fast.URL+"/resumed.gguf")
	if !strings.Contains(r.stdout, "Downloaded llm model resumed") {
		t.Errorf("resume:\n%s", r)
	}
	ok(t, "models", "verify", "resumed")
	ok(t, "models", "delete", "resumed")
}
