package stack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/ggufgen"
)

func TestChooseDiffusion(t *testing.T) {
	for _, c := range []struct {
		name string
		f    DiffusionFacts
		demo bool
		in   string
	}{
		{"asked for the demo", DiffusionFacts{ForceDemo: true, SDCLI: "/x/sd-cli", Model: "m"}, true, "-demo-engines"},
		{"no engine", DiffusionFacts{Model: "m"}, true, "no stable-diffusion.cpp found"},
		{"engine without a model", DiffusionFacts{SDCLI: "/x/sd-cli", Source: "PATH"}, true, "no diffusion model"},
		{"engine and model", DiffusionFacts{SDCLI: "/x/sd-cli", SDServer: "/x/sd-server", Source: "PATH", Model: "m", ModelSource: "imported"}, false, `stable-diffusion.cpp /x/sd-cli (PATH) with model "m"`},
	} {
		got := ChooseDiffusion(c.f)
		if got.Demo != c.demo || !strings.Contains(got.Sentence, c.in) {
			t.Errorf("%s: %+v", c.name, got)
		}
		if got.Demo && got.Hint == "" {
			t.Errorf("%s: the demo runs without a line on how to switch", c.name)
		}
		if !got.Demo && (got.SDCLI != c.f.SDCLI || got.SDServer != c.f.SDServer || got.Model != c.f.Model) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
}

func TestFindSDCPPInEnginesDir(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	bin := filepath.Join(root, SDCPPRelDir)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if cli, _, _, err := FindSDCPP("", "", sub); err != nil || cli != "" {
		t.Fatalf("nothing there yet: %q %v", cli, err)
	}
	for _, n := range []string{"sd-cli", "sd-server"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/false\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cli, server, source, err := FindSDCPP("", "", sub)
	if err != nil || cli != filepath.Join(bin, "sd-cli") || server != filepath.Join(bin, "sd-server") || source != SDCPPRelDir {
		t.Fatalf("found %q %q %q %v", cli, server, source, err)
	}
	if _, _, _, err := FindSDCPP(filepath.Join(root, "nope"), "", sub); err == nil {
		t.Fatal("a configured path that does not exist must be an error")
	}
	if c, s, src, err := FindSDCPP(filepath.Join(bin, "sd-cli"), "", "/"); err != nil || c != filepath.Join(bin, "sd-cli") || s != filepath.Join(bin, "sd-server") || src != "configured" {
		t.Fatalf("configured sd-cli, sd-server beside it: %q %q %q %v", c, s, src, err)
	}
}

func TestEnsureDiffusionModelImportsOnce(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	if id, _, err := EnsureDiffusionModel(ctx, data, "", ""); err != nil || id != "" {
		t.Fatalf("empty store: %q %v", id, err)
	}
	file := filepath.Join(t.TempDir(), "My Model v1.5.gguf")
	if err := ggufgen.WriteFile(file, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	id, src, err := EnsureDiffusionModel(ctx, data, "", file)
	if err != nil || id != "my-model-v1.5" || !strings.Contains(src, "imported from") {
		t.Fatalf("import: %q %q %v", id, src, err)
	}
	if id2, src2, err := EnsureDiffusionModel(ctx, data, "", file); err != nil || id2 != id || !strings.Contains(src2, "earlier") {
		t.Fatalf("second run: %q %q %v", id2, src2, err)
	}
	if id3, _, err := EnsureDiffusionModel(ctx, data, "", ""); err != nil || id3 != id {
		t.Fatalf("newest in the store: %q %v", id3, err)
	}
	if _, _, err := EnsureDiffusionModel(ctx, data, "missing", ""); err == nil {
		t.Fatal("an unknown -diffusion-model must be an error")
	}
	truncated := filepath.Join(t.TempDir(), "cut.gguf")
	b, _ := os.ReadFile(file)
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureDiffusionModel(ctx, data, "", truncated); err == nil || !strings.Contains(err.Error(), "truncated") && !strings.Contains(err.Error(), "not a whole") {
		t.Fatalf("truncated file: %v", err)
	}
}
