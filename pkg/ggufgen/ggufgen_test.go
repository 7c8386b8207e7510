package ggufgen

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	parser "github.com/gpustack/gguf-parser-go"
)

func writeTemp(t *testing.T, c Config) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := WriteFile(p, c); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	return p
}

func TestParsedBackByGGUFParser(t *testing.T) {
	for _, typ := range []TensorType{F32, F16} {
		t.Run(typ.String(), func(t *testing.T) {
			c := Config{Seed: 7, Layers: 3, Dim: 32, Heads: 4, KVHeads: 2, FFN: 48, Context: 128, VocabPieces: 40, Type: typ}
			p := writeTemp(t, c)
			gf, err := parser.ParseGGUFFile(p)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if gf.Header.Magic != parser.GGUFMagicGGUFLe || gf.Header.Version != parser.GGUFVersionV3 {
				t.Fatalf("header magic/version = %v/%v", gf.Header.Magic, gf.Header.Version)
			}
			if gf.TensorDataStartOffset%Alignment != 0 {
				t.Errorf("tensor data starts at %d, not %d-aligned", gf.TensorDataStartOffset, Alignment)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := Size(c); fi.Size() != want {
				t.Errorf("file is %d bytes, Size says %d", fi.Size(), want)
			}

			md := gf.Header.MetadataKV
			wantU32 := map[string]uint32{
				"llama.context_length":            128,
				"llama.embedding_length":          32,
				"llama.block_count":               3,
				"llama.feed_forward_length":       48,
				"llama.attention.head_count":      4,
				"llama.attention.head_count_kv":   2,
				"llama.rope.dimension_count":      8,
				"tokenizer.ggml.bos_token_id":     BOSID,
				"tokenizer.ggml.eos_token_id":     EOSID,
				"tokenizer.ggml.unknown_token_id": UnknownID,
				"general.alignment":               Alignment,
			}
			for k, want := range wantU32 {
				kv, ok := md.Get(k)
				if !ok {
					t.Errorf("missing key %s", k)
					continue
				}
				if got := kv.ValueUint32(); got != want {
					t.Errorf("%s = %d, want %d", k, got, want)
				}
			}
			for k, want := range map[string]string{
				"general.architecture":    "llama",
				"general.name":            DefaultName,
				"tokenizer.ggml.model":    "llama",
				"tokenizer.chat_template": ChatTemplate,
			} {
				kv, ok := md.Get(k)
				if !ok {
					t.Errorf("missing key %s", k)
				} else if got := kv.ValueString(); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if kv, ok := md.Get("llama.attention.layer_norm_rms_epsilon"); !ok || kv.ValueFloat32() != 1e-5 {
				t.Errorf("rms epsilon = %v (found %v)", kv.Value, ok)
			}

			nv := c.VocabSize()
			tok := gf.Tokenizer()
			if tok.Model != "llama" || int(tok.TokensLength) != nv || tok.BOSTokenID != BOSID || tok.EOSTokenID != EOSID {
				t.Errorf("tokenizer = %+v, want llama with %d tokens", tok, nv)
			}
			tokens, _ := md.Get("tokenizer.ggml.tokens")
			toks := tokens.ValueArray().ValuesString()
			types, _ := md.Get("tokenizer.ggml.token_type")
			typs := types.ValueArray().ValuesInt32()
			scores, _ := md.Get("tokenizer.ggml.scores")
			if len(toks) != nv || len(typs) != nv || int(scores.ValueArray().Len) != nv {
				t.Fatalf("token arrays: %d tokens, %d types, %d scores; want %d", len(toks), len(typs), scores.ValueArray().Len, nv)
			}
			if toks[0] != "<unk>" || toks[1] != "<s>" || toks[2] != "</s>" {
				t.Errorf("special tokens = %q", toks[:3])
			}
			for b := 0; b < 256; b++ {
				if want := fmt.Sprintf("<0x%02X>", b); toks[3+b] != want || typs[3+b] != tokenByte {
					t.Fatalf("token %d = %q type %d, want %q type 6", 3+b, toks[3+b], typs[3+b], want)
				}
			}
			seen := map[string]bool{}
			for _, s := range toks {
				if seen[s] {
					t.Fatalf("duplicate token %q", s)
				}
				seen[s] = true
			}

			// Tensors: names, shapes, types, aligned offsets that tile the data section.
			want := c.tensors()
			if len(gf.TensorInfos) != len(want) || int(gf.Header.TensorCount) != len(want) {
				t.Fatalf("%d tensors, want %d", len(gf.TensorInfos), len(want))
			}
			kvDim := uint64(32 / 4 * 2)
			shapes := map[string][]uint64{
				"token_embd.weight":        {32, uint64(nv)},
				"blk.0.attn_norm.weight":   {32},
				"blk.0.attn_q.weight":      {32, 32},
				"blk.1.attn_k.weight":      {32, kvDim},
				"blk.2.attn_v.weight":      {32, kvDim},
				"blk.2.attn_output.weight": {32, 32},
				"blk.1.ffn_norm.weight":    {32},
				"blk.0.ffn_gate.weight":    {32, 48},
				"blk.2.ffn_up.weight":      {32, 48},
				"blk.1.ffn_down.weight":    {48, 32},
				"output_norm.weight":       {32},
				"output.weight":            {32, uint64(nv)},
			}
			got := map[string]parser.GGUFTensorInfo{}
			var end uint64
			for i, ti := range gf.TensorInfos {
				got[ti.Name] = ti
				if ti.Name != want[i].name {
					t.Errorf("tensor %d = %s, want %s", i, ti.Name, want[i].name)
				}
				if ti.Offset%Alignment != 0 {
					t.Errorf("%s at offset %d, not aligned", ti.Name, ti.Offset)
				}
				if ti.Offset < end {
					t.Errorf("%s at %d overlaps the previous tensor ending at %d", ti.Name, ti.Offset, end)
				}
				end = ti.Offset + ti.Bytes()
				wantType := parser.GGMLTypeF32
				if len(ti.Dimensions) == 2 && typ == F16 {
					wantType = parser.GGMLTypeF16
				}
				if ti.Type != wantType {
					t.Errorf("%s type %v, want %v", ti.Name, ti.Type, wantType)
				}
			}
			if int64(end) > fi.Size()-gf.TensorDataStartOffset {
				t.Errorf("tensor data ends at %d, beyond the file (%d data bytes)", end, fi.Size()-gf.TensorDataStartOffset)
			}
			for name, dims := range shapes {
				ti, ok := got[name]
				if !ok {
					t.Errorf("missing tensor %s", name)
					continue
				}
				if fmt.Sprint(ti.Dimensions) != fmt.Sprint(dims) {
					t.Errorf("%s dims %v, want %v", name, ti.Dimensions, dims)
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	sum := func(c Config) [32]byte {
		var b bytes.Buffer
		n, err := Write(&b, c)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(b.Len()) {
			t.Fatalf("Write returned %d, wrote %d", n, b.Len())
		}
		return sha256.Sum256(b.Bytes())
	}
	a := sum(Config{Seed: 42})
	if b := sum(Config{Seed: 42}); a != b {
		t.Fatal("same seed gave different bytes")
	}
	if b := sum(Config{Seed: 43}); a == b {
		t.Fatal("different seeds gave the same bytes")
	}
	// The file is the same through WriteFile.
	data, err := os.ReadFile(writeTemp(t, Config{Seed: 42}))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(data) != a {
		t.Fatal("WriteFile and Write differ")
	}
}

func TestWeightsAreSeededAndBounded(t *testing.T) {
	c := Config{Seed: 3, VocabPieces: 8}
	var b bytes.Buffer
	if _, err := Write(&b, c); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	gf, err := parser.ParseGGUFFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()[gf.TensorDataStartOffset:]
	for _, ti := range gf.TensorInfos {
		raw := data[ti.Offset : ti.Offset+ti.Bytes()]
		vals := make([]float32, len(raw)/4)
		distinct := map[float32]bool{}
		for i := range vals {
			vals[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
			distinct[vals[i]] = true
			if math.IsNaN(float64(vals[i])) || math.Abs(float64(vals[i])) > 1 {
				t.Fatalf("%s[%d] = %v", ti.Name, i, vals[i])
			}
		}
		isNorm := len(ti.Dimensions) == 1
		if isNorm && (len(distinct) != 1 || !distinct[1]) {
			t.Errorf("%s: norm weights should all be 1", ti.Name)
		}
		if !isNorm && len(distinct) < len(vals)/2 {
			t.Errorf("%s: only %d distinct values of %d", ti.Name, len(distinct), len(vals))
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Layers: -1},
		{Dim: 30, Heads: 4},
		{Dim: 12, Heads: 4}, // head dim 3 is odd
		{Heads: 4, KVHeads: 3},
		{Context: 4},
		{VocabPieces: MaxVocabPieces + 1},
		{Type: 9},
		{Layers: MaxLayers, Dim: MaxDim, FFN: MaxFFN},
	} {
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: err = %v, want ErrInvalidConfig", c, err)
		}
		if _, werr := Write(&bytes.Buffer{}, c); !errors.Is(werr, ErrInvalidConfig) {
			t.Errorf("%+v: Write err = %v", c, werr)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFileLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	if err := WriteFile(p, Config{Dim: 30, Heads: 4}); err == nil {
		t.Fatal("want error")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "m.gguf"), Config{}); err == nil {
		t.Fatal("want error for a missing directory")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

func TestVocabPiecesCountAndUniqueness(t *testing.T) {
	for _, n := range []int{1, 27, 200, 5000} {
		v := buildVocab(n)
		if len(v.tokens) != numSpecial+256+n {
			t.Fatalf("n=%d: %d tokens", n, len(v.tokens))
		}
		seen := map[string]bool{}
		for _, s := range v.tokens {
			if seen[s] {
				t.Fatalf("n=%d: duplicate %q", n, s)
			}
			seen[s] = true
		}
	}
}

func TestFloat16(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},
		{70000, 0x7c00}, // overflow → +Inf
		{float32(math.Inf(-1)), 0xfc00},
		{5.960464477539063e-08, 0x0001}, // smallest subnormal
		{6.103515625e-05, 0x0400},       // smallest normal
		{1.0009765625, 0x3c01},
		{1.00048828125, 0x3c00}, // halfway, rounds to even
		{1.00146484375, 0x3c02}, // halfway, rounds to even (up)
		{0.1, 0x2e66},
	} {
		if got := float16bits(tc.f); got != tc.want {
			t.Errorf("float16bits(%v) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
	if got := float16bits(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("NaN → %#04x", got)
	}
}

func BenchmarkWrite(b *testing.B) {
	c := Config{Seed: 1, Layers: 4, Dim: 256, Heads: 8, FFN: 512}
	n, _ := Size(c)
	b.SetBytes(n)
	for b.Loop() {
		if _, err := Write(discard{}, c); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
