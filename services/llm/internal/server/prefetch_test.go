package server_test

import (
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
)

// Issue 17: the LLM's model file read back into the page cache while the image generates.

// prefetchModel is big enough (≈ 200 MB, F16) for the page cache to matter at a reload.
var prefetchModel = ggufgen.Config{Seed: 4, Dim: 1024, Layers: 8, Heads: 16, FFN: 2816, Context: 512, Type: ggufgen.F16}

// evict drops path from the page cache (nothing maps it: llama-server is stopped).
func evict(t testing.TB, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// resident is the fraction of path's pages in the page cache (mincore).
func resident(t testing.TB, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		if v&1 != 0 {
			n++
		}
	}
	return float64(n) / float64(len(vec))
}

func TestPrefetchReadsTheOffloadedModelIntoThePageCache(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if r, err := h.llm.Prefetch(ctxTimeout(t, 10*time.Second), &llmv1.PrefetchRequest{}); err != nil || r.GetPrefetched() || r.GetSkippedReason() == "" {
		t.Fatalf("prefetch before any start: %v %v", r, err)
	}
	path := h.addModel("big", prefetchModel)
	h.start(&llmv1.LLMConfig{ModelId: "big", ContextSize: 512, Threads: 2})
	h.stop(&llmv1.StopRequest{ForOffload: true})
	evict(t, path)
	if r := resident(t, path); r > 0.5 {
		t.Fatalf("%.0f %% still cached after POSIX_FADV_DONTNEED", 100*r)
	}
	r, err := h.llm.Prefetch(ctxTimeout(t, 60*time.Second), &llmv1.PrefetchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetPrefetched() {
		t.Skipf("not prefetched on this host: %s", r.GetSkippedReason()) // only when available memory is short
	}
	if got := resident(t, path); got < 0.9 || r.GetBytes() <= 0 {
		t.Fatalf("after prefetch %v: %.0f %% of the model file cached", r, 100*got)
	}
}

// BenchmarkPrefetchReload compares, alternating in one run, the reload (Start until ready) of
// a model evicted from the page cache (POSIX_FADV_DONTNEED) after a Prefetch with the same
// reload without one. Reported: medians in ms and with/without (the Prefetch itself is not
// timed: it runs while the image generates).
func BenchmarkPrefetchReload(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	path := h.addModel("big", prefetchModel)
	cfg := &llmv1.LLMConfig{ModelId: "big", ContextSize: 512, Threads: 2}
	h.start(cfg)
	var with, without []time.Duration
	reload := func(prefetch bool) time.Duration {
		h.stop(&llmv1.StopRequest{ForOffload: true})
		evict(b, path)
		if prefetch {
			r, err := h.llm.Prefetch(ctxTimeout(b, 60*time.Second), &llmv1.PrefetchRequest{})
			if err != nil || !r.GetPrefetched() {
				b.Fatalf("prefetch: %v %v", r, err)
			}
		}
		t0 := time.Now()
		h.start(cfg)
		return time.Since(t0)
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			with = append(with, reload(true))
			without = append(without, reload(false))
		} else {
			without = append(without, reload(false))
			with = append(with, reload(true))
		}
		i++
	}
	mw, mo := median(with), median(without)
	b.ReportMetric(ms(mw), "with-ms")
	b.ReportMetric(ms(mo), "without-ms")
	b.ReportMetric(float64(mw)/float64(mo), "with/without")
}
