package server

import (
	"maps"
	"testing"

	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

func TestParseManagedNames(t *testing.T) {
	got, err := ParseManagedNames(" llama-server=llm, sd-cli = diffusion ,sd=diffusion")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"llama-server": "llm", "sd-cli": "diffusion", "sd": "diffusion"}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	if got, err := ParseManagedNames(""); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"llama-server", "=llm", "x=", "a/b=llm", "ok=llm,,"} {
		if _, err := ParseManagedNames(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	defaults := telemetry.DefaultManagedNames()
	round, err := ParseManagedNames(FormatManagedNames(defaults))
	if err != nil || !maps.Equal(round, defaults) {
		t.Fatalf("round trip of defaults: %v %v", round, err)
	}
}
