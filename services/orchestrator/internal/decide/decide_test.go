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

// serverImage is an sd-server image estimate: weights, overhead and the size term.
func serverImage(weights, overhead, act uint64) estimate.Diffusion {
	return estimate.Diffusion{WeightsBytes: weights, OverheadBytes: overhead, ActivationBytes: act, TotalBytes: weights + overhead + act}
}

func TestServerModeCountsWhatSDServerHolds(t *testing.T) {
	const MiB = 1 << 20
	img := serverImage(4*GiB, 50*MiB, GiB) // peak 5 GiB + 50 MiB
	base := decide.Input{Image: img, GPUIndex: -1, FreeBytes: 2 * GiB, LLMRunning: true, LLMReleaseBytes: 8 * GiB, LLMReleaseSource: "measured RSS", HeadroomBytes: 256 * MiB}

	// CLI mode: the whole peak must come from free memory.
	cli := decide.Decide(base)
	if !cli.NeedsOffload || cli.NeedBytes != img.TotalBytes+256*MiB || cli.KeptBytes != 0 || !cli.LLMFitsBack {
		t.Fatalf("cli: %+v", cli)
	}

	// Server mode with the model resident: only the size term is new, and it fits.
	in := base
	in.DiffusionMode, in.DiffusionResidentBytes = estimate.ModeServer, 4*GiB+50*MiB
	srv := decide.Decide(in)
	if srv.NeedsOffload || !srv.Fits || srv.NeedBytes != GiB+256*MiB || srv.KeptBytes != 4*GiB+50*MiB || !srv.LLMFitsBack {
		t.Fatalf("server with the model resident: %+v", srv)
	}
	if !strings.Contains(srv.Explanation, "sd-server already holds 4.0 GiB, so 1.0 GiB more") || !strings.HasPrefix(srv.Explanation, "No offload") {
		t.Fatalf("sentence: %s", srv.Explanation)
	}
	if srv.Values()["diffusion_resident_bytes"] != float64(4*GiB+50*MiB) || srv.Values()["need_bytes"] != float64(srv.NeedBytes) {
		t.Fatalf("values %v", srv.Values())
	}

	// Server mode before its first job (sd-server loads lazily: 42 MiB): the weights are still
	// to come, so the LLM goes; and sd-server keeps them after the image, more than the 2 GiB
	// available now, so the LLM will not fit back beside it.
	in.DiffusionResidentBytes = 42 * MiB
	cold := decide.Decide(in)
	if !cold.NeedsOffload || !cold.Fits || cold.NeedBytes != img.TotalBytes-42*MiB+256*MiB || cold.KeptBytes != img.ResidentBytes() || cold.LLMFitsBack {
		t.Fatalf("server before its first job: %+v", cold)
	}
	if !strings.Contains(cold.Explanation, "may not fit back until sd-server is stopped") || !strings.HasSuffix(cold.Explanation, ".") {
		t.Fatalf("sentence: %s", cold.Explanation)
	}

	// The same with room for the weights beside the LLM: it fits back.
	in.FreeBytes = 4*GiB + 100*MiB
	roomy := decide.Decide(in)
	if !roomy.NeedsOffload || !roomy.LLMFitsBack || strings.Contains(roomy.Explanation, "fit back") {
		t.Fatalf("server with room for the weights: %+v", roomy)
	}

	// With a budget, what sd-server holds is in managed memory already: not counted twice.
	bud := decide.Input{Image: img, GPUIndex: -1, FreeBytes: 64 * GiB, ManagedBytes: 12*GiB + 50*MiB, LLMRunning: true, LLMReleaseBytes: 8 * GiB,
		BudgetBytes: 14 * GiB, DiffusionMode: estimate.ModeServer, DiffusionResidentBytes: 4*GiB + 50*MiB}
	if d := decide.Decide(bud); d.NeedsOffload || d.AvailableBytes != 2*GiB-50*MiB {
		t.Fatalf("budget in server mode: %+v", d)
	}
	bud.DiffusionMode = estimate.ModeCLI
	if d := decide.Decide(bud); !d.NeedsOffload {
		t.Fatalf("the same numbers in CLI mode must offload: %+v", d)
	}
}
