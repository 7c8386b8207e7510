package sdmodel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

// Tensor describes one tensor of a GGUF file written by WriteGGUF.
type Tensor struct {
	Name string
	Dims []uint64
	Type uint32 // ggml type: 0 F32, 1 F16, 2 Q4_0, ...
}

// EncodeGGUF returns a complete GGUF v3 file with the given tensors, zero-filled data and a few
// metadata keys. It is what tests hand to the stand-ins as a "model".
func EncodeGGUF(tensors []Tensor) ([]byte, error) {
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { le(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	le(uint32(3))
	le(uint64(len(tensors)))
	le(uint64(3))
	str("general.architecture")
	le(uint32(ggufString))
	str("sdxs-standin")
	str("general.name")
	le(uint32(ggufString))
	str("genailab stand-in test model")
	str("general.alignment")
	le(uint32(ggufUint32))
	le(uint32(32))
	var off uint64
	for _, t := range tensors {
		gt, ok := ggmlTypes[t.Type]
		if !ok {
			return nil, fmt.Errorf("encode gguf: tensor %s: unknown ggml type %d", t.Name, t.Type)
		}
		elems := uint64(1)
		for _, d := range t.Dims {
			elems *= d
		}
		if len(t.Dims) == 0 || elems%uint64(gt.block) != 0 {
			return nil, fmt.Errorf("encode gguf: tensor %s: bad shape %v", t.Name, t.Dims)
		}
		str(t.Name)
		le(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			le(d)
		}
		le(t.Type)
		le(off)
		off += elems / uint64(gt.block) * uint64(gt.bytes)
		off = (off + 31) / 32 * 32
	}
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, off))
	return b.Bytes(), nil
}

// TestTensors is a small tensor set in the layout of an SD1-class checkpoint.
var TestTensors = []Tensor{
	{Name: "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", Dims: []uint64{64, 32}, Type: 1},
	{Name: "model.diffusion_model.input_blocks.0.0.weight", Dims: []uint64{3, 3, 4, 32}, Type: 0},
	{Name: "model.diffusion_model.out.2.weight", Dims: []uint64{64, 32}, Type: 2},
	{Name: "first_stage_model.decoder.conv_in.weight", Dims: []uint64{3, 3, 4, 16}, Type: 0},
}

// WriteTestModel writes a small valid GGUF model to path.
func WriteTestModel(path string) error {
	data, err := EncodeGGUF(TestTensors)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write test model: %w", err)
	}
	return nil
}

// WriteTruncatedModel writes a GGUF whose header is complete but whose tensor data stops short,
// like the first 100,000 bytes of a real model.
func WriteTruncatedModel(path string) error {
	data, err := EncodeGGUF(TestTensors)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data[:len(data)-len(data)/4], 0o644); err != nil {
		return fmt.Errorf("write truncated model: %w", err)
	}
	return nil
}
