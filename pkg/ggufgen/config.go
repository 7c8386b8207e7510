// Package ggufgen writes small, real GGUF v3 models of the llama architecture with seeded random weights.
//
// The files are loaded by a real llama-server (llama.cpp) and generate text at thousands of tokens per
// second on a CPU; the text is random (it contains U+FFFD and control characters), which is what tests of
// clients and supervisors need. The tokenizer is a sentencepiece-style ("llama") vocabulary: <unk>, <s>,
// </s>, the 256 byte tokens <0x00>..<0xFF> (type BYTE) and a number of word pieces with scores. A chat
// template is included so /v1/chat/completions works.
//
// The output is a pure function of the Config: the same Config (seed included) gives the same bytes.
// Only the standard library is used.
package ggufgen

import (
	"errors"
	"fmt"
)

// TensorType is the storage type of the weight matrices (norm vectors are always F32).
type TensorType uint32

// GGML tensor types written by this package (values are the GGML type ids). A Config's
// weights are F32 or F16; a Layout's tensors may also be Q4_0 (its data is zeros).
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
)

func (t TensorType) String() string {
	switch t {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case Q4_0:
		return "q4_0"
	default:
		return fmt.Sprintf("TensorType(%d)", uint32(t))
	}
}

// ParseTensorType parses "f32" or "f16".
func ParseTensorType(s string) (TensorType, error) {
	switch s {
	case "f32", "F32":
		return F32, nil
	case "f16", "F16":
		return F16, nil
	}
	return 0, fmt.Errorf("tensor type %q: want f32 or f16", s)
}

// block is the type's block: elems elements stored in bytes bytes (ok false for a type this
// package does not write).
func (t TensorType) block() (elems, bytes int64, ok bool) {
	switch t {
	case F32:
		return 1, 4, true
	case F16:
		return 1, 2, true
	case Q4_0:
		return 32, 18, true // 32 4-bit values and one f16 scale
	}
	return 0, 0, false
}

// DefaultName is the general.name written when Config.Name is empty.
const DefaultName = "genailab tiny random-weight test model (not a language model)"

// Config describes the model to generate. Zero fields take the values of DefaultConfig.
type Config struct {
	Name        string     // general.name
	Seed        uint64     // weight seed
	Layers      int        // llama.block_count
	Dim         int        // llama.embedding_length
	Heads       int        // llama.attention.head_count
	KVHeads     int        // llama.attention.head_count_kv (0: same as Heads)
	FFN         int        // llama.feed_forward_length
	Context     int        // llama.context_length
	VocabPieces int        // word pieces after the 3 special and 256 byte tokens
	Type        TensorType // storage type of the weight matrices
}

// Default model shape: ~1.5 MB, loads in a fraction of a second.
const (
	DefaultLayers      = 2
	DefaultDim         = 64
	DefaultHeads       = 4
	DefaultFFN         = 128
	DefaultContext     = 256
	DefaultVocabPieces = 128
)

// Limits keep a typo from filling the disk: the largest model allowed is a few GB.
const (
	MaxLayers      = 256
	MaxDim         = 16384
	MaxFFN         = 65536
	MaxContext     = 1 << 20
	MaxVocabPieces = 200000
	maxTotalBytes  = 16 << 30
)

// DefaultConfig returns the default tiny model (seed 1).
func DefaultConfig() Config {
	return Config{Seed: 1}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Layers == 0 {
		c.Layers = DefaultLayers
	}
	if c.Dim == 0 {
		c.Dim = DefaultDim
	}
	if c.Heads == 0 {
		c.Heads = DefaultHeads
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.FFN == 0 {
		c.FFN = DefaultFFN
	}
	if c.Context == 0 {
		c.Context = DefaultContext
	}
	if c.VocabPieces == 0 {
		c.VocabPieces = DefaultVocabPieces
	}
	return c
}

// ErrInvalidConfig is wrapped by every validation error.
var ErrInvalidConfig = errors.New("invalid model config")

// Validate reports whether the config (after defaults) describes a model llama.cpp can load.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Layers < 1 || c.Layers > MaxLayers:
		return bad("layers %d not in 1..%d", c.Layers, MaxLayers)
	case c.Dim < 2 || c.Dim > MaxDim:
		return bad("dim %d not in 2..%d", c.Dim, MaxDim)
	case c.Heads < 1 || c.Dim%c.Heads != 0:
		return bad("heads %d must divide dim %d", c.Heads, c.Dim)
	case (c.Dim/c.Heads)%2 != 0:
		return bad("head dimension %d (dim/heads) must be even for RoPE", c.Dim/c.Heads)
	case c.KVHeads < 1 || c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0:
		return bad("kv heads %d must divide heads %d", c.KVHeads, c.Heads)
	case c.FFN < 1 || c.FFN > MaxFFN:
		return bad("ffn %d not in 1..%d", c.FFN, MaxFFN)
	case c.Context < 8 || c.Context > MaxContext:
		return bad("context %d not in 8..%d", c.Context, MaxContext)
	case c.VocabPieces < 1 || c.VocabPieces > MaxVocabPieces:
		return bad("vocab pieces %d not in 1..%d", c.VocabPieces, MaxVocabPieces)
	case c.Type != F32 && c.Type != F16:
		return bad("tensor type %v", c.Type)
	}
	if n := c.tensorBytes(); n > maxTotalBytes {
		return bad("model would be %d bytes (limit %d)", n, int64(maxTotalBytes))
	}
	return nil
}

// VocabSize is the number of tokens: 3 special + 256 byte tokens + the word pieces.
func (c Config) VocabSize() int {
	return numSpecial + 256 + c.withDefaults().VocabPieces
}
