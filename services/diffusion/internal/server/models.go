package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

// DemoModelID is the model id that, in demo mode, names a generated stand-in model when the
// store holds no model of that id.
const DemoModelID = "demo"

// models resolves a model id of the store (type diffusion) to the files sd.cpp loads.
type models struct {
	store *modelstore.Store
	// demoDir, when set (demo mode), is where the demo model is generated.
	demoDir string
}

func (m *models) resolve(ctx context.Context, id string) (sdargs.Model, error) {
	rec, err := m.store.Get(ctx, id)
	if errors.Is(err, modelstore.ErrNotFound) && id == DemoModelID && m.demoDir != "" {
		return m.demoModel()
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

// demoModel writes (once) a small GGUF file that the stand-ins accept as a model.
func (m *models) demoModel() (sdargs.Model, error) {
	p := filepath.Join(m.demoDir, "demo-standin.gguf")
	if _, err := os.Stat(p); err == nil {
		return sdargs.Model{Path: p}, nil
	}
	data, err := sdmodel.EncodeGGUF(sdmodel.TestTensors)
	if err != nil {
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	if err := os.MkdirAll(m.demoDir, 0o755); err != nil {
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	tmp, err := os.CreateTemp(m.demoDir, ".demo-*.gguf")
	if err != nil {
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return sdargs.Model{}, fmt.Errorf("demo model: %w", err)
	}
	return sdargs.Model{Path: p}, nil
}
