package decide_test

import (
	"strings"
	"testing"

	"github.com/genailab/genailab/services/orchestrator/internal/decide"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
)

const GiB = 1 << 30

func image(total uint64) estimate.Diffusion {
	return estimate.Diffusion{WeightsBytes: total / 2, ActivationBytes: total / 2, TotalBytes: total}
}

func TestDecisions(t *testing.T) {
	cases := []struct {
		name       string
		in         decide.Input
		offload    bool
		fits       bool
		availNow   uint64
		availAfter uint64
		sentence   string
	}{
		{"fits on the GPU", decide.Input{Image: image(4 * GiB), GPUIndex: 0, FreeBytes: 10 * GiB, LLMRunning: true, LLMReleaseBytes: 6 * GiB, HeadroomBytes: GiB},
			false, true, 10 * GiB, 16 * GiB, "No offload"},
		{"needs the LLM's memory", decide.Input{Image: image(8 * GiB), GPUIndex: 1, FreeBytes: 5 * GiB, LLMRunning: true, LLMReleaseBytes: 6 * GiB, LLMReleaseSource: "measured", HeadroomBytes: GiB},
			true, true, 5 * GiB, 11 * GiB, "on GPU 1"},
		{"headroom tips it", decide.Input{Image: image(4 * GiB), GPUIndex: 0, FreeBytes: 4 * GiB, LLMRunning: true, LLMReleaseBytes: 2 * GiB, HeadroomBytes: 1},
			true, true, 4 * GiB, 6 * GiB, "Offload"},
		{"too big even after offload", decide.Input{Image: image(20 * GiB), GPUIndex: 0, FreeBytes: 5 * GiB, LLMRunning: true, LLMReleaseBytes: 6 * GiB},
			true, false, 5 * GiB, 11 * GiB, "best chance"},
		{"LLM not running", decide.Input{Image: image(8 * GiB), GPUIndex: -1, FreeBytes: 5 * GiB, LLMReleaseBytes: 6 * GiB},
			false, false, 5 * GiB, 5 * GiB, "not running"},
		{"budget forces offload", decide.Input{Image: image(2 * GiB), GPUIndex: -1, FreeBytes: 20 * GiB, ManagedBytes: 3 * GiB, LLMRunning: true, LLMReleaseBytes: 3 * GiB, BudgetBytes: 4 * GiB},
			true, true, 1 * GiB, 4 * GiB, "budget 4.0 GiB"},
		{"budget below what the engines use", decide.Input{Image: image(1), GPUIndex: -1, FreeBytes: 20 * GiB, ManagedBytes: 3 * GiB, LLMRunning: true, LLMReleaseBytes: GiB, BudgetBytes: 1},
			true, false, 0, 0, "best chance"},
		{"large budget changes nothing", decide.Input{Image: image(2 * GiB), GPUIndex: -1, FreeBytes: 20 * GiB, ManagedBytes: 3 * GiB, LLMRunning: true, LLMReleaseBytes: 3 * GiB, BudgetBytes: 1 << 50},
			false, true, 20 * GiB, 23 * GiB, "of RAM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide.Decide(c.in)
			if d.NeedsOffload != c.offload || d.Fits != c.fits {
				t.Fatalf("offload %v fits %v, want %v %v: %s", d.NeedsOffload, d.Fits, c.offload, c.fits, d.Explanation)
			}
			if d.AvailableBytes != c.availNow || d.AvailableAfterOffloadBytes != c.availAfter {
				t.Fatalf("available %d after %d, want %d %d", d.AvailableBytes, d.AvailableAfterOffloadBytes, c.availNow, c.availAfter)
			}
			if !strings.Contains(d.Explanation, c.sentence) || !strings.HasSuffix(d.Explanation, ".") {
				t.Fatalf("explanation %q lacks %q", d.Explanation, c.sentence)
			}
			r := d.Response()
			if r.NeedsOffload != d.NeedsOffload || r.RequiredBytes != c.in.Image.TotalBytes || r.FreeBytes != c.in.FreeBytes ||
				r.BudgetBytes != c.in.BudgetBytes || r.GpuIndex != int32(c.in.GPUIndex) || r.Explanation != d.Explanation {
				t.Fatalf("response does not carry the numbers: %v", r)
			}
		})
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{512: "512 B", 3 << 10: "3 KiB", 512 << 20: "512 MiB", 3 * GiB / 2: "1.5 GiB"} {
		if got := decide.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
