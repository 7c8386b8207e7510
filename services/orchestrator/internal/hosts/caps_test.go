package hosts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
)

// The capabilities come with the health checks' GetInfo: a preview request is never placed
// on a simulated sd-server host (i%4 == 2), and is refused at once, without waiting, when
// pinned to one; Supported refuses only what no host (or the pinned one) can run.
func TestSimulatedHostsArePlacedByCapability(t *testing.T) {
	reg := startSim(t, 8)
	preview := place.Needs{Preview: "proj"}
	if got, at := reg.Hosts()[2].Capabilities(); got == nil || got.Mode != "server" || len(got.PreviewMethods) != 0 || at.IsZero() {
		t.Fatalf("host-002's capabilities: %+v (checked %v)", got, at)
	}
	if got, _ := reg.Hosts()[0].Capabilities(); got != nil {
		t.Fatalf("a stopped engine's capabilities: %+v", got)
	}
	var placed []*Host
	for range 6 { // every host able to take it (the stopped ones included: not known)
		h, ch, err := reg.Acquire(agent.ImageRequest{Width: 512, Height: 512}, place.Request{Needs: preview}, nil, nil)
		if err != nil {
			t.Fatalf("after %d placements: %v", len(placed), err)
		}
		if h.Name() == "host-002" || h.Name() == "host-006" {
			t.Fatalf("a preview request placed on the server host %s: %s", h.Name(), ch.Explanation)
		}
		if !strings.Contains(ch.Explanation, "Excluded 2 host(s) whose engine cannot run it: host-002: proj previews are not available in server mode (sd-server writes no previews); host-006") {
			t.Errorf("explanation: %s", ch.Explanation)
		}
		placed = append(placed, h)
	}
	// The rest are busy or excluded: wait for a busy one, never the server hosts.
	if _, _, err := reg.Acquire(agent.ImageRequest{Width: 512, Height: 512}, place.Request{Needs: preview}, nil, nil); !errors.Is(err, place.ErrAllBusy) {
		t.Errorf("all able hosts busy: %v", err)
	}
	for _, h := range placed {
		reg.Release(h)
	}
	_, _, err := reg.Acquire(agent.ImageRequest{Width: 512, Height: 512}, place.Request{Pin: "host-002", Needs: preview}, nil, nil)
	if !errors.Is(err, place.ErrUnsupported) || !strings.Contains(err.Error(), "on host host-002: proj previews are not available in server mode") {
		t.Errorf("pinned to a server host: %v", err)
	}
	ctx := context.Background()
	for pin, want := range map[string]bool{"": true, "host-001": true, "host-000": true, "host-002": false} {
		err := reg.Supported(ctx, preview, pin)
		if ok := err == nil; ok != want || (!ok && !errors.Is(err, place.ErrUnsupported)) {
			t.Errorf("Supported(previews, pin %q): %v", pin, err)
		}
	}
	// A batch no known engine runs: refused on a known host; over all hosts the stopped
	// ones (capabilities not known) let it through to their probe.
	if err := reg.Supported(ctx, place.Needs{N: 9}, "host-001"); !errors.Is(err, place.ErrUnsupported) || !strings.Contains(err.Error(), "batches of 9 are not available (at most 8) in CLI mode") {
		t.Errorf("a batch of 9 on host-001: %v", err)
	}
	if err := reg.Supported(ctx, place.Needs{N: 9}, ""); err != nil {
		t.Errorf("a batch of 9 with stopped engines: %v", err)
	}
}

// A refusal from facts older than FreshFor checks the refusing host again first: an engine
// restarted in another mode since its last periodic check is not refused for its old mode.
// The periodic checks are an hour apart here, so only Supported's own check can see it.
func TestSupportedChecksAgainBeforeRefusingOnOldFacts(t *testing.T) {
	modeFile := filepath.Join(t.TempDir(), "cli")
	reg := startSimWith(t, 3, simConfig{env: []string{simCLIEnv + "=" + modeFile}, options: func(o *Options) {
		o.CheckInterval, o.FreshFor = time.Hour, time.Hour
	}})
	ctx := context.Background()
	preview := place.Needs{Preview: "proj"}
	h := reg.Hosts()[2]
	_, before := h.Capabilities()
	// Fresh facts (FreshFor an hour): refused from them, no check.
	if err := reg.Supported(ctx, preview, "host-002"); !errors.Is(err, place.ErrUnsupported) {
		t.Fatalf("server host: %v", err)
	}
	if _, at := h.Capabilities(); at != before {
		t.Errorf("a refusal from fresh facts checked the host again")
	}
	// The engine now runs sd-cli; the facts are old (FreshFor 1 ns): checked again, accepted.
	if err := os.WriteFile(modeFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	reg.o.FreshFor = time.Nanosecond
	if err := reg.Supported(ctx, preview, "host-002"); err != nil {
		t.Fatalf("after the switch to sd-cli: %v", err)
	}
	if caps, at := h.Capabilities(); !at.After(before) || caps.Mode != "CLI" {
		t.Errorf("facts after Supported: %+v checked %v (before %v)", caps, at, before)
	}
}
