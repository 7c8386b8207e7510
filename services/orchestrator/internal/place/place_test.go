package place

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const gib = 1 << 30

func ready(name string, avail, after uint64) Candidate {
	return Candidate{Name: name, Usable: true, HasModel: true, NeedBytes: 4 * gib, AvailableBytes: avail, AfterOffloadBytes: after, LLMRunning: true, LLMBytes: after - avail}
}

func TestChooseOrder(t *testing.T) {
	fits := ready("fits", 6*gib, 10*gib)
	loaded := ready("loaded", 2*gib, 8*gib)
	loaded.ModelLoaded = true
	idleSmall := ready("idle-small", 1*gib, 5*gib)
	busySmall := ready("busy-small", 1*gib, 5*gib)
	busySmall.LLMBusy = true
	idleLarge := ready("idle-large", 1*gib, 9*gib)
	noModel := ready("no-model", 20*gib, 20*gib)
	noModel.HasModel = false
	drained := ready("drained", 20*gib, 20*gib)
	drained.Usable, drained.Why = false, "draining"

	cases := []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{"fits without offload beats a loaded model", []Candidate{loaded, fits, noModel, drained}, "fits"},
		{"loaded model beats a cheaper offload", []Candidate{idleSmall, loaded}, "loaded"},
		{"idle LLM before busy", []Candidate{busySmall, idleLarge}, "idle-large"},
		{"smaller LLM before larger", []Candidate{idleLarge, idleSmall}, "idle-small"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := Choose(c.cands, Request{})
			if err != nil || ch.Name != c.want {
				t.Fatalf("chose %q (%v), want %q", ch.Name, err, c.want)
			}
			if !strings.Contains(ch.Explanation, c.want) {
				t.Errorf("explanation %q does not name the host", ch.Explanation)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	small, big := ready("small", 5*gib, 6*gib), ready("big", 40*gib, 41*gib)
	if ch, _ := Choose([]Candidate{big, small}, Request{Policy: Binpack}); ch.Name != "small" {
		t.Errorf("binpack chose %s", ch.Name)
	}
	if ch, _ := Choose([]Candidate{small, big}, Request{Policy: Spread}); ch.Name != "big" {
		t.Errorf("spread chose %s", ch.Name)
	}
	if _, err := ParsePolicy("random"); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestPinAndErrors(t *testing.T) {
	a, b := ready("a", 6*gib, 10*gib), ready("b", 1*gib, 9*gib)
	if ch, err := Choose([]Candidate{a, b}, Request{Pin: "b"}); err != nil || ch.Name != "b" || !ch.NeedsOffload {
		t.Fatalf("pin: %+v %v", ch, err)
	}
	if _, err := Choose([]Candidate{a}, Request{Pin: "zz"}); !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), "unknown host") {
		t.Errorf("unknown pin: %v", err)
	}
	busy := a
	busy.Usable, busy.Busy = false, true
	if _, err := Choose([]Candidate{busy}, Request{}); !errors.Is(err, ErrAllBusy) {
		t.Errorf("busy: %v", err)
	}
	none := a
	none.HasModel = false
	none.NoModelWhy = "the diffusion engine is not running"
	if _, err := Choose([]Candidate{none}, Request{}); !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), "diffusion model") ||
		!strings.Contains(err.Error(), none.Name+": the diffusion engine is not running") {
		t.Errorf("no model: %v", err)
	}
	down := a
	down.Usable, down.Why = false, "unreachable"
	if _, err := Choose([]Candidate{down}, Request{Pin: "a"}); !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("pinned unreachable: %v", err)
	}
}

// BenchmarkChoose100 is the decision alone over 100 hosts (goal ≤ 1 ms).
func BenchmarkChoose100(b *testing.B) {
	cands := make([]Candidate, 100)
	for i := range cands {
		cands[i] = ready(fmt.Sprintf("host-%03d", i), uint64(i%7)*gib, uint64(8+i%5)*gib)
		cands[i].LLMBusy = i%3 == 0
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Choose(cands, Request{}); err != nil {
			b.Fatal(err)
		}
	}
}
