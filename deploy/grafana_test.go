package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/clients/go/stacktest"
	"github.com/genailab/genailab/pkg/ports"
	"github.com/genailab/genailab/pkg/testenv"
)

// RequirePrometheusEnv=1 makes a missing prometheus binary a failure instead of a skip (CI
// installs Debian's prometheus).
const RequirePrometheusEnv = "GENAILAB_REQUIRE_PROMETHEUS"

// dashboardFile is the lab's Grafana dashboard.
const dashboardFile = "grafana/genailab.json"

// dashboardExprs returns every PromQL expression of the dashboard, with the Grafana
// variables the test's Prometheus cannot know replaced.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	r := strings.NewReplacer("$__rate_interval", "5m", "$__range", "10m")
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without an expression", p.Title)
				continue
			}
			out = append(out, r.Replace(tg.Expr))
		}
	}
	if len(out) == 0 {
		t.Fatal("no expressions in the dashboard")
	}
	return out
}

// prometheus is a running Debian prometheus scraping the stack.
type prometheus struct {
	url string
	cmd *exec.Cmd
	out *bytes.Buffer
}

// startPrometheus runs prometheus with a configuration scraping targets (job → address)
// every second, its storage in a temporary directory, on a free loopback port.
func startPrometheus(t *testing.T, targets map[string]string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testenv.Need(t, RequirePrometheusEnv, fmt.Errorf("%w: prometheus not on PATH (apt-get install prometheus)", testenv.ErrMissing))
	}
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	for _, name := range stacktest.MetricsNames {
		fmt.Fprintf(&cfg, "  - job_name: genailab-%s\n    static_configs:\n      - targets: [%q]\n", name, targets[name])
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := &prometheus{url: "http://" + addr, out: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "--config.file="+file, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out)
		}
	})
	return p
}

// sample is one element of an instant query's vector result.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// query runs an instant query through the HTTP API.
func (p *prometheus) query(ctx context.Context, expr string) ([]sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %s: %w", expr, body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s, want vector", expr, r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// waitFor polls expr until it returns a sample with a value for which ok holds.
func (p *prometheus) waitFor(t *testing.T, ctx context.Context, expr string, ok func(float64) bool) {
	t.Helper()
	var last []sample
	var err error
	for ctx.Err() == nil {
		if last, err = p.query(ctx, expr); err == nil {
			for _, s := range last {
				if ok(s.value()) {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no wanted sample before the deadline (last %v, %v)", expr, last, err)
}

// post sends a JSON body to the gateway and reads the whole (possibly streamed) reply.
func post(t *testing.T, ctx context.Context, url, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, b)
	}
}

// A real Prometheus scrapes a real stack (real llama-server; the real stable-diffusion.cpp
// when found, else the stand-in; the orchestrator's budget of 1 byte makes every image
// offload the LLM) while chats and images go through the gateway twice, then every PromQL
// expression of the Grafana dashboard runs through Prometheus's HTTP API and must return
// data. Only the GPU panels may be empty, and only where the monitor reports no GPU.
func TestDashboardQueriesAgainstARealStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a stack and prometheus")
	}
	exprs := dashboardExprs(t)
	if _, err := exec.LookPath("prometheus"); err != nil {
		testenv.Need(t, RequirePrometheusEnv, fmt.Errorf("%w: prometheus not on PATH (apt-get install prometheus)", testenv.ErrMissing))
	}
	testenv.RequireLlamaServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	opts, sd, note, err := stacktest.ImageEngines(false, stacktest.Options{DemoEngines: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(note)
	bin := t.TempDir()
	if err := stacktest.Build(ctx, bin, stacktest.Packages...); err != nil {
		t.Fatal(err)
	}
	opts.BinDir, opts.DataDir = bin, t.TempDir()
	opts.Env = append(opts.Env, "GENAILAB_ORCHESTRATOR_BUDGET_BYTES=1")
	st, err := stacktest.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("stack output:\n%s", st.Output())
		}
	}()
	prom := startPrometheus(t, st.MetricsAddrs)
	// Every target scraped once before anything happens, so that rates see the increases.
	prom.waitFor(t, ctx, `count(up{job=~"genailab-.*"} == 1)`, func(v float64) bool { return v == float64(len(stacktest.MetricsNames)) })

	gw := "http://" + st.Addrs["gateway"]
	size := 64
	if sd != nil {
		size = 128
	}
	image := fmt.Sprintf(`{"prompt":"a lighthouse","width":%d,"height":%d,"steps":4}`, size, size)
	for round := range 2 {
		post(t, ctx, gw+"/v1/llm/chat", `{"messages":[{"role":"user","content":"hello"}],"maxTokens":8}`)
		post(t, ctx, gw+"/v1/images/generations", image)
		// The LLM is back (the reload ends after the image) and scraped so.
		prom.waitFor(t, ctx, fmt.Sprintf(`sum(genailab_orchestrator_reload_duration_seconds_count) >= %d`, round+1), func(float64) bool { return true })
		prom.waitFor(t, ctx, `min(genailab_llm_engine_up)`, func(v float64) bool { return v == 1 })
	}
	post(t, ctx, gw+"/v1/llm/chat", `{"messages":[{"role":"user","content":"again"}],"maxTokens":8}`)
	// One more scrape of every target after the last request.
	last := float64(time.Now().Unix())
	prom.waitFor(t, ctx, `min(timestamp(up{job=~"genailab-.*"}))`, func(v float64) bool { return v > last+1 })

	gpu, err := prom.query(ctx, `max(genailab_gpu_telemetry_available)`)
	if err != nil {
		t.Fatal(err)
	}
	haveGPU := len(gpu) == 1 && gpu[0].value() == 1
	for _, expr := range exprs {
		res, err := prom.query(ctx, expr)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(res) == 0 {
			if !haveGPU && (strings.Contains(expr, "DCGM_") || strings.Contains(expr, "genailab_gpu_")) {
				t.Logf("no GPU here (genailab_gpu_telemetry_available 0): %s returns nothing", expr)
				continue
			}
			t.Errorf("no data: %s", expr)
			continue
		}
		finite := 0
		for _, s := range res {
			if v := s.value(); !math.IsNaN(v) && !math.IsInf(v, 0) {
				finite++
			}
		}
		if finite == 0 {
			t.Errorf("only NaN or Inf: %s = %v", expr, res)
			continue
		}
		t.Logf("%s: %d series, first %v = %v", expr, len(res), res[0].Metric, res[0].value())
	}
}
