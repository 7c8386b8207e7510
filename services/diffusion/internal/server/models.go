package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// DemoModelID is the model id that, in demo mode, names a generated stand-in model when the
// store holds no model of that id.
const DemoModelID = "demo"

// models resolves a model id of the store (type diffusion) to the files sd.cpp loads.
type models struct {
	store *modelstore.Store
	// demoDir, when set (demo mode), is where the demo model is generated, by the demo sd-cli
	// stand-in demoCLI returns.
	demoDir string
	demoCLI func() (string, error)
}

func (m *models) resolve(ctx context.Context, id string) (sdargs.Model, error) {
	rec, err := m.store.Get(ctx, id)
	if errors.Is(err, modelstore.ErrNotFound) && id == DemoModelID && m.demoDir != "" {
		return m.demoModel(ctx)
	}
	if err != nil {
		return sdargs.Model{}, fmt.Errorf("model %q: %w", id, err)
	}
	var out sdargs.Model
	slots := map[string]*string{
		modelstore.ComponentModel:          &out.Path,
		modelstore.ComponentDiffusionModel: &out.DiffusionModel,
		modelstore.ComponentClipL:          &out.ClipL,
		modelstore.ComponentClipG:          &out.ClipG,
		modelstore.ComponentT5XXL:          &out.T5XXL,
		modelstore.ComponentLLM:            &out.LLM,
		modelstore.ComponentVAE:            &out.VAE,
	}
	for _, f := range rec.Files {
		slot, ok := slots[f.Component]
		if !ok || *slot != "" {
			continue // unknown component, or a later shard (sd.cpp opens the first)
		}
		p, err := m.store.FilePath(id, f.Name)
		if err != nil {
			return sdargs.Model{}, fmt.Errorf("model %q: %w", id, err)
		}
		*slot = p
	}
	if err := out.Validate(); err != nil {
		return sdargs.Model{}, fmt.Errorf("model %q: %w", id, err)
	}
	return out, nil
}

// demoModel writes (once) the small GGUF model the demo stand-ins accept, by asking the
// stand-in itself (`sd-cli-standin --write-demo-model PATH`): the service carries no stand-in
// code. The file is written beside its final name and renamed.
func (m *models) demoModel(ctx context.Context) (sdargs.Model, error) {
	p := filepath.Join(m.demoDir, "demo-standin.gguf")
	if _, err := os.Stat(p); err == nil {
		return sdargs.Model{Path: p}, nil
	}
	if m.demoCLI == nil {
		return sdargs.Model{}, errors.New("demo model: no demo engine configured")
	}
	bin, err := m.demoCLI()
	if err != nil {
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	if err := os.MkdirAll(m.demoDir, 0o755); err != nil {
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	tmp := filepath.Join(m.demoDir, fmt.Sprintf(".demo-%d.gguf", os.Getpid()))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--write-demo-model", tmp)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return sdargs.Model{}, fmt.Errorf("demo model: %s --write-demo-model: %w: %s", bin, err, out)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	return sdargs.Model{Path: p}, nil
}
