package sdmodel

import (
	"bytes"
	"fmt"
	"os"

	"github.com/genailab/genailab/pkg/ggufgen"
)

// DemoModel is the stand-ins' model (`sd-cli-standin --write-demo-model`, and what tests hand
// to them): a small GGUF in the tensor layout of an SD1-class checkpoint, with zero weights.
var DemoModel = ggufgen.Layout{
	Architecture: "sdxs-standin",
	Name:         "genailab stand-in test model",
	Tensors: []ggufgen.Tensor{
		{Name: "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", Dims: []uint64{64, 32}, Type: ggufgen.F16},
		{Name: "model.diffusion_model.input_blocks.0.0.weight", Dims: []uint64{3, 3, 4, 32}, Type: ggufgen.F32},
		{Name: "model.diffusion_model.out.2.weight", Dims: []uint64{64, 32}, Type: ggufgen.Q4_0},
		{Name: "first_stage_model.decoder.conv_in.weight", Dims: []uint64{3, 3, 4, 16}, Type: ggufgen.F32},
	},
}

// WriteTestModel writes the demo model to path.
func WriteTestModel(path string) error {
	if err := ggufgen.WriteLayoutFile(path, DemoModel); err != nil {
		return fmt.Errorf("write test model: %w", err)
	}
	return nil
}

// WriteTruncatedModel writes the demo model with its header complete but its tensor data
// stopping short, like the first 100,000 bytes of a real model.
func WriteTruncatedModel(path string) error {
	var b bytes.Buffer
	if _, err := ggufgen.WriteLayout(&b, DemoModel); err != nil {
		return fmt.Errorf("write truncated model: %w", err)
	}
	data := b.Bytes()
	if err := os.WriteFile(path, data[:len(data)-len(data)/4], 0o644); err != nil {
		return fmt.Errorf("write truncated model: %w", err)
	}
	return nil
}
