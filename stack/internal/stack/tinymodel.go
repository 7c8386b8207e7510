package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelstore"
)

// TinyModelID is the id of the quick start's generated model.
const TinyModelID = "tiny-random-llama"

// EnsureTinyModel installs the quick start's LLM into the data directory's model store
// unless it is there already: a tiny llama-architecture GGUF with random weights, made
// by ggufgen. llama-server really loads and runs it, so chat works out of the box, but
// its replies are random text: it is labelled as a test model everywhere.
func EnsureTinyModel(ctx context.Context, dataDir string) (string, error) {
	store, err := modelstore.Open(modelstore.Options{DataDir: dataDir, Type: modelstore.TypeLLM})
	if err != nil {
		return "", err
	}
	if _, err := store.Get(ctx, TinyModelID); err == nil {
		return TinyModelID, nil
	} else if !errors.Is(err, modelstore.ErrNotFound) {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "genailab-tiny-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, TinyModelID+".gguf")
	if err := ggufgen.WriteFile(src, ggufgen.DefaultConfig()); err != nil {
		return "", fmt.Errorf("generate tiny model: %w", err)
	}
	if _, err := store.Import(ctx, TinyModelID, "Tiny random-weight llama (test model: replies are random text)", src); err != nil {
		return "", fmt.Errorf("install tiny model: %w", err)
	}
	return TinyModelID, nil
}
