package sdargs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The real help texts of stable-diffusion.cpp master-827 (../shared/reference/sdcpp/help).
func referenceHelp(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "..", "shared", "reference", "sdcpp", "help", name))
	if err != nil {
		t.Skipf("no reference capture: %v", err)
	}
	return string(b)
}

func TestParseHelpOnTheRealHelpTexts(t *testing.T) {
	for _, name := range []string{"sd-cli.help.stdout", "sd-server.help.stdout"} {
		f := ParseHelp(referenceHelp(t, name))
		for _, want := range []string{"--backend", "--clip-on-cpu", "--vae-on-cpu", "--offload-to-cpu", "--vae-tiling", "--diffusion-fa", "--threads", "--model"} {
			if !f.Has(want) {
				t.Errorf("%s: %s not found among %d flags", name, want, len(f))
			}
		}
		// Words of descriptions that happen to start with "--" inside a sentence are not flags.
		if f.Has("--") {
			t.Errorf("%s: bare -- parsed as a flag", name)
		}
	}
	if f := ParseHelp(referenceHelp(t, "sd-cli.help.stdout")); !f.Has("--preview") || !f.Has("--output") {
		t.Error("sd-cli: --preview/--output missing")
	}
}

// Regression: the project passed --clip-on-cpu and --vae-on-cpu, which master-827 marks
// deprecated in favour of --backend te=cpu / vae=cpu.
func TestMemoryUsesBackendWhenTheBinaryOffersIt(t *testing.T) {
	m := Memory{ClipOnCPU: true, VAEOnCPU: true, VAETiling: true}
	if got := m.Args(); !slices.Equal(got, []string{"--vae-tiling", "--clip-on-cpu", "--vae-on-cpu"}) {
		t.Errorf("unknown build: %v", got)
	}
	m.Offered = Flags{"--backend": true}
	if got := m.Args(); !slices.Equal(got, []string{"--vae-tiling", "--backend", "te=cpu,vae=cpu"}) {
		t.Errorf("with --backend: %v", got)
	}
	m.ClipOnCPU = false
	if got := m.Args(); !slices.Equal(got, []string{"--vae-tiling", "--backend", "vae=cpu"}) {
		t.Errorf("vae only: %v", got)
	}
}
