package membench_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/membench"
	"github.com/genailab/genailab/stack/internal/stack"
)

// BenchmarkRSSGrowth starts the real stack (stack.Start, what `genailab
// up` runs: the five services, the real llama-server with the tiny model,
// the demo image engine), sends the request mix (membench.Mix: health,
// usage, 4-token chats, 64×64 one-step images) through the gateway one at
// a time, and reads every service's VmRSS after 100, 1,000 and 10,000
// requests. Reported per service: the RSS after 100 in MB and the ratios
// of the RSS and of its anonymous part (heap, stacks: RssAnon) after 1,000
// and 10,000 to those after 100 (goal ≤ 1.10 at 10,000); the log adds the
// file-backed part (RssFile: the executable, the orchestrator's bbolt
// file). One iteration is the whole run:
//
//	go test -run '^$' -bench RSSGrowth -benchtime 1x -timeout 60m ./internal/membench
//
// GENAILAB_MEMBENCH_POINTS=100,1000,10000,20000 sets other points (the
// first is the baseline).
func BenchmarkRSSGrowth(b *testing.B) {
	points := []int{100, 1_000, 10_000}
	if v := os.Getenv("GENAILAB_MEMBENCH_POINTS"); v != "" {
		points = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || len(points) > 0 && n <= points[len(points)-1] {
				b.Fatalf("GENAILAB_MEMBENCH_POINTS=%q: want increasing request counts", v)
			}
			points = append(points, n)
		}
	}
	llama := testenv.RequireLlamaServer(b)
	bin := b.TempDir()
	build(b, bin)
	for b.Loop() {
		runGrowth(b, llama, bin, points)
	}
}

func runGrowth(b *testing.B, llama, bin string, points []int) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	data := b.TempDir()
	model, err := stack.EnsureTinyModel(ctx, data)
	if err != nil {
		b.Fatal(err)
	}
	logs := &syncBuffer{}
	s, err := stack.Start(ctx, stack.Options{DataDir: data, BinDir: bin, Ephemeral: true, LlamaServer: llama,
		LLMModel: model, Diffusion: stack.ChooseDiffusion(stack.DiffusionFacts{ForceDemo: true}), LogOutput: logs})
	if err != nil {
		b.Fatalf("start stack: %v\n%s", err, logs.String())
	}
	defer s.Stop(context.Background())
	pids := map[string]int{}
	for _, pid := range s.Pids() {
		name, err := membench.Name(pid)
		if err != nil {
			b.Fatal(err)
		}
		pids[strings.TrimPrefix(name, "genailab-")] = pid
	}
	if len(pids) != 5 {
		b.Fatalf("services %v, want the five", pids)
	}
	names := make([]string, 0, len(pids))
	for n := range pids {
		names = append(names, n)
	}
	sort.Strings(names)

	r := &membench.Runner{Gateway: "http://" + s.Addr("gateway"), Client: &http.Client{Timeout: time.Minute}}
	rss := map[int]map[string]membench.Resident{}
	for _, at := range points {
		t0 := time.Now()
		if err := r.Run(ctx, at-r.Sent()); err != nil {
			b.Fatalf("%v\n%s", err, logs.tail(40))
		}
		rss[at] = map[string]membench.Resident{}
		for _, n := range names {
			v, err := membench.RSS(pids[n])
			if err != nil {
				b.Fatal(err)
			}
			rss[at][n] = v
		}
		b.Logf("after %d requests (%.1f s for the last batch): %s", at, time.Since(t0).Seconds(), format(names, rss[at]))
	}
	base := rss[points[0]]
	for _, n := range names {
		b.ReportMetric(float64(base[n].RSS)/(1<<20), n+"-MB@"+fmt.Sprint(points[0]))
		for _, at := range points[1:] {
			b.ReportMetric(float64(rss[at][n].RSS)/float64(base[n].RSS), fmt.Sprintf("%s-ratio@%d", n, at))
			b.ReportMetric(float64(rss[at][n].Anon)/float64(base[n].Anon), fmt.Sprintf("%s-anon-ratio@%d", n, at))
		}
	}
}

func format(names []string, rss map[string]membench.Resident) string {
	mb := func(v int64) float64 { return float64(v) / (1 << 20) }
	var sb strings.Builder
	for _, n := range names {
		r := rss[n]
		fmt.Fprintf(&sb, "%s %.1f MB (anon %.1f, file %.1f); ", n, mb(r.RSS), mb(r.Anon), mb(r.File))
	}
	return sb.String()
}

func build(b *testing.B, dir string) {
	b.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, stack.Packages...)...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("build services: %v", err)
	}
}

// syncBuffer collects the services' log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *syncBuffer) tail(n int) string {
	lines := strings.Split(s.String(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
