package stack

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/genailab/genailab/pkg/execfile"
	"github.com/genailab/genailab/pkg/modelfile"
	"github.com/genailab/genailab/pkg/modelstore"
)

// SDCPPRelDir is where the quick start looks for a stable-diffusion.cpp build (sd-cli and
// sd-server), relative to the working directory or any directory above it: `make engines` puts
// a lab-provided build there, and users may copy their own.
const SDCPPRelDir = ".engines/sdcpp/bin"

// DiffusionFacts is what the launcher found about the image engine.
type DiffusionFacts struct {
	// SDCLI and SDServer are the real stable-diffusion.cpp programs found ("" when none);
	// Source says by which rule (flag, PATH, .engines).
	SDCLI, SDServer, Source string
	// ForceDemo: the user asked for the stand-in (-demo-engines).
	ForceDemo bool
	// Model is the diffusion model to run (a store id), "" when the store has none.
	Model string
	// ModelSource says where Model comes from (imported from a file, named by a flag, the
	// newest in the store).
	ModelSource string
}

// DiffusionChoice is what the stack runs for images, with the sentence the banner prints.
type DiffusionChoice struct {
	Demo     bool
	SDCLI    string
	SDServer string
	Model    string // "" with Demo: the demo model
	Sentence string
	// Hint is one line on how to get the real engine, when the demo runs.
	Hint string
}

// ChooseDiffusion decides between the real stable-diffusion.cpp and the demo stand-in: the
// real one when it and a diffusion model were found (and the demo was not asked for).
func ChooseDiffusion(f DiffusionFacts) DiffusionChoice {
	const howto = "for real images: put sd-cli and sd-server on PATH or in " + SDCPPRelDir + " (or -sd-cli/-sd-server), and give a model with -diffusion-model-file FILE (.gguf or .safetensors)"
	switch {
	case f.ForceDemo:
		return DiffusionChoice{Demo: true, Sentence: "images: the demo stand-in (synthetic images, marked demo), as asked with -demo-engines", Hint: howto}
	case f.SDCLI == "":
		return DiffusionChoice{Demo: true, Sentence: "images: the demo stand-in (synthetic images, marked demo): no stable-diffusion.cpp found", Hint: howto}
	case f.Model == "":
		return DiffusionChoice{Demo: true, Sentence: fmt.Sprintf("images: the demo stand-in (synthetic images, marked demo): stable-diffusion.cpp found (%s, %s) but no diffusion model in the store", f.SDCLI, f.Source),
			Hint: "for real images: genailab up -diffusion-model-file FILE (imports it into the store; .gguf or .safetensors)"}
	}
	return DiffusionChoice{SDCLI: f.SDCLI, SDServer: f.SDServer, Model: f.Model,
		Sentence: fmt.Sprintf("images: stable-diffusion.cpp %s (%s) with model %q (%s)", f.SDCLI, f.Source, f.Model, f.ModelSource)}
}

// FindSDCPP finds sd-cli and sd-server: the configured paths, then PATH (sd-cli or sd, and
// sd-server), then SDCPPRelDir from dir upwards. A configured path that is not an executable
// is an error, never a fall-through to another build.
func FindSDCPP(cli, server, dir string) (foundCLI, foundServer, source string, err error) {
	if cli != "" || server != "" {
		for _, p := range []string{cli, server} {
			if p == "" {
				continue
			}
			if _, err := execfile.Check(p); err != nil {
				return "", "", "", fmt.Errorf("stable-diffusion.cpp: %w", err)
			}
		}
		if server == "" && cli != "" {
			// sd-server beside the configured sd-cli, when there is one.
			if p := filepath.Join(filepath.Dir(cli), "sd-server"); execfile.Is(p) {
				server = p
			}
		}
		return abs(cli), abs(server), "configured", nil
	}
	for _, n := range []string{"sd-cli", "sd"} {
		if p, err := exec.LookPath(n); err == nil {
			s, _ := exec.LookPath("sd-server")
			return abs(p), abs(s), "PATH", nil
		}
	}
	for d := dir; d != ""; {
		bin := filepath.Join(d, SDCPPRelDir)
		if execfile.Is(filepath.Join(bin, "sd-cli")) {
			s := filepath.Join(bin, "sd-server")
			if !execfile.Is(s) {
				s = ""
			}
			return filepath.Join(bin, "sd-cli"), s, SDCPPRelDir, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return "", "", "", nil
}

func abs(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// EnsureDiffusionModel returns the diffusion model to run: id when given (it must exist), else
// the file imported into the store (once: its id is the file's base name), else the newest
// model of the store, else "".
func EnsureDiffusionModel(ctx context.Context, dataDir, id, file string) (model, source string, err error) {
	store, err := modelstore.Open(modelstore.Options{DataDir: dataDir, Type: modelstore.TypeDiffusion})
	if err != nil {
		return "", "", err
	}
	if id != "" {
		if _, err := store.Get(ctx, id); err != nil {
			return "", "", fmt.Errorf("diffusion model %q: %w", id, err)
		}
		if file == "" {
			return id, "-diffusion-model", nil
		}
	}
	if file != "" {
		if err := modelfile.Check(file); err != nil {
			return "", "", fmt.Errorf("-diffusion-model-file: %w", err)
		}
		if id == "" {
			id = modelIDFromFile(file)
		}
		if _, err := store.Get(ctx, id); err == nil {
			return id, "imported earlier from " + filepath.Base(file), nil
		} else if !errors.Is(err, modelstore.ErrNotFound) {
			return "", "", err
		}
		if _, err := store.Import(ctx, id, filepath.Base(file), file); err != nil {
			return "", "", fmt.Errorf("import %s: %w", file, err)
		}
		return id, "imported from " + file, nil
	}
	recs, err := store.List(ctx)
	if err != nil {
		return "", "", err
	}
	if len(recs) == 0 {
		return "", "", nil
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].DownloadedAt.After(recs[j].DownloadedAt) })
	return recs[0].ID, "the newest diffusion model in the store", nil
}

// modelIDFromFile derives a store id from a file name: the base name without its extension,
// lower-cased, with characters an id cannot hold replaced by '-'.
func modelIDFromFile(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-.")
	if id == "" || modelstore.ValidateID(id) != nil {
		return "diffusion-model"
	}
	return id
}
