package place

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The capabilities sd-server and sd-cli report (services/diffusion/internal/engine).
var (
	serverCaps = &Capabilities{Mode: "server", Edits: true, Masks: true, MaxBatch: 8,
		Limitations: "server mode (sd-server's job API) writes no previews; use CLI mode for them"}
	cliCaps  = &Capabilities{Mode: "CLI", PreviewMethods: []string{"proj", "tae", "vae"}, Edits: true, Masks: true, MaxBatch: 8}
	demoCaps = &Capabilities{Mode: "CLI", MaxBatch: 8, Limitations: "the demo engine writes no previews and cannot edit images"}
	preview  = Needs{Preview: "proj"}
)

func withCaps(c Candidate, caps *Capabilities) Candidate {
	c.Caps = caps
	return c
}

func TestPlacementExcludesHostsWhoseModeCannotRunTheRequest(t *testing.T) {
	// The server host fits without offload and has the model loaded: without previews it wins.
	srv := withCaps(ready("srv", 20*gib, 20*gib), serverCaps)
	srv.ModelLoaded = true
	cli := withCaps(ready("cli", 1*gib, 5*gib), cliCaps)
	hosts := []Candidate{srv, cli}

	ch, err := Choose(hosts, Request{})
	if err != nil || ch.Name != "srv" || strings.Contains(ch.Explanation, "Excluded") {
		t.Fatalf("text-to-image: %q %v (%q)", ch.Name, err, ch.Explanation)
	}
	ch, err = Choose(hosts, Request{Needs: preview})
	if err != nil || ch.Name != "cli" || ch.Considered != 1 || !ch.NeedsOffload {
		t.Fatalf("previews: %+v %v", ch, err)
	}
	for _, want := range []string{"Placed on cli", "Excluded 1 host(s)", "srv: proj previews are not available in server mode", "writes no previews"} {
		if !strings.Contains(ch.Explanation, want) {
			t.Errorf("explanation %q lacks %q", ch.Explanation, want)
		}
	}
	// The CLI host busy: wait for it, never fall back to the server host.
	busy := cli
	busy.Usable, busy.Busy, busy.Why = false, true, "busy"
	if _, err := Choose([]Candidate{srv, busy}, Request{Needs: preview}); !errors.Is(err, ErrAllBusy) {
		t.Errorf("previews, CLI host busy: %v", err)
	}
	// Only the server host, usable or busy, pinned or not: refused, naming the mode.
	srvBusy := srv
	srvBusy.Usable, srvBusy.Busy = false, true
	for name, req := range map[string]struct {
		c   []Candidate
		req Request
	}{
		"alone":             {[]Candidate{srv}, Request{Needs: preview}},
		"busy":              {[]Candidate{srvBusy}, Request{Needs: preview}},
		"pinned":            {hosts, Request{Pin: "srv", Needs: preview}},
		"cli has no model":  {[]Candidate{srv, func() Candidate { c := cli; c.HasModel = false; return c }()}, Request{Needs: preview}},
		"edit on demo host": {[]Candidate{withCaps(ready("demo", 20*gib, 20*gib), demoCaps)}, Request{Needs: Needs{Edit: true}}},
	} {
		_, err := Choose(req.c, req.req)
		if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), " mode") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Unknown capabilities (engine stopped): not excluded, its probe decides.
	unknown := ready("unknown", 20*gib, 20*gib)
	if ch, err := Choose([]Candidate{srv, unknown}, Request{Needs: preview}); err != nil || ch.Name != "unknown" {
		t.Errorf("unknown capabilities: %q %v", ch.Name, err)
	}
	// Excluded hosts are named when the rest cannot take it either.
	drained := cli
	drained.Usable, drained.Why = false, "drained by an operator"
	_, err = Choose([]Candidate{srv, drained}, Request{Needs: preview})
	if !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), "excluded for their engine's mode: srv: proj previews") {
		t.Errorf("drained CLI host: %v", err)
	}
}

func TestLacks(t *testing.T) {
	for _, c := range []struct {
		caps *Capabilities
		n    Needs
		want string
	}{
		{cliCaps, Needs{Preview: "tae", Edit: true, Mask: true, N: 8}, ""},
		{serverCaps, Needs{Edit: true, Mask: true, N: 8}, ""},
		{serverCaps, Needs{Preview: "vae"}, "vae previews are not available"},
		{serverCaps, Needs{N: 9}, "batches of 9 are not available (at most 8)"},
		{demoCaps, Needs{Edit: true}, "image edits are not available"},
		{&Capabilities{Edits: true, MaxBatch: 1}, Needs{Edit: true, Mask: true}, "inpainting masks are not available"},
		{&Capabilities{}, Needs{N: 1}, ""},
		{&Capabilities{}, Needs{N: 2}, "batches of 2 are not available (at most 1)"},
	} {
		if got := c.caps.Lacks(c.n); got != c.want {
			t.Errorf("%+v lacks %q for %+v, want %q", c.caps, got, c.n, c.want)
		}
	}
	var unknown *Capabilities
	if err := unknown.Check(Needs{Preview: "proj"}); err != nil {
		t.Errorf("unknown capabilities refused: %v", err)
	}
	if err := serverCaps.Check(preview); !errors.Is(err, ErrUnsupported) ||
		err.Error() != "the diffusion engine cannot run this request: proj previews are not available in server mode (server mode (sd-server's job API) writes no previews; use CLI mode for them)" {
		t.Errorf("server check: %v", err)
	}
}

func TestSupportedAtTheSubmitEdge(t *testing.T) {
	srv := Candidate{Name: "srv", Caps: serverCaps}
	srv2 := Candidate{Name: "srv2", Caps: serverCaps}
	cli := Candidate{Name: "cli", Caps: cliCaps}
	unknown := Candidate{Name: "new"}
	cases := []struct {
		name  string
		cands []Candidate
		req   Request
		want  string // "" accepted
	}{
		{"no hosts", nil, Request{Needs: preview}, ""},
		{"no needs", []Candidate{srv}, Request{}, ""},
		{"a CLI host", []Candidate{srv, cli}, Request{Needs: preview}, ""},
		{"a host not known yet", []Candidate{srv, unknown}, Request{Needs: preview}, ""},
		{"server host only", []Candidate{srv}, Request{Needs: preview}, "cannot run this request on host srv: proj previews are not available in server mode"},
		{"two server hosts", []Candidate{srv, srv2}, Request{Needs: preview}, "on any of the 2 host(s): srv: proj previews are not available in server mode"},
		{"pinned to the server host", []Candidate{srv, cli}, Request{Pin: "srv", Needs: preview}, "on host srv: proj"},
		{"pinned to an unknown name", []Candidate{srv}, Request{Pin: "nope", Needs: preview}, ""},
	}
	for _, c := range cases {
		err := Supported(c.cands, c.req)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	many := make([]Candidate, 10)
	for i := range many {
		many[i] = Candidate{Name: string(rune('a' + i)), Caps: serverCaps}
	}
	if err := Supported(many, Request{Needs: preview}); err == nil || !strings.Contains(err.Error(), "and 7 more") || strings.Count(err.Error(), "previews are not available") != 3 {
		t.Errorf("ten server hosts: %v", err)
	}
}

// BenchmarkChoose100Previews: a preview request over 100 hosts, half of them sd-server
// (excluded, each named in the sentence), against BenchmarkChoose100's plain request.
func BenchmarkChoose100Previews(b *testing.B) {
	cands := make([]Candidate, 100)
	for i := range cands {
		cands[i] = ready(fmt.Sprintf("host-%03d", i), uint64(i%7)*gib, uint64(8+i%5)*gib)
		cands[i].LLMBusy = i%3 == 0
		cands[i].Caps = cliCaps
		if i%2 == 0 {
			cands[i].Caps = serverCaps
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Choose(cands, Request{Needs: preview}); err != nil {
			b.Fatal(err)
		}
	}
}
