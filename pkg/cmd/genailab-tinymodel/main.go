// Command genailab-tinymodel writes a tiny llama-architecture GGUF model with seeded random weights, for
// tests and local runs of the LLM service (see package ggufgen).
//
//	genailab-tinymodel -o tiny.gguf                    # ~1.5 MB, default shape
//	genailab-tinymodel -o big.gguf -dim 1024 -layers 24 -ffn 4096 -type f16   # a few hundred MB
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/ggufgen"
)

func main() {
	cmdmain.Exit("genailab-tinymodel", run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("genailab-tinymodel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output path (required; written atomically)")
	seed := fs.Uint64("seed", 1, "weight seed")
	layers := fs.Int("layers", ggufgen.DefaultLayers, "number of transformer blocks")
	dim := fs.Int("dim", ggufgen.DefaultDim, "embedding dimension")
	heads := fs.Int("heads", ggufgen.DefaultHeads, "attention heads")
	kvHeads := fs.Int("kv-heads", 0, "key/value heads (0: same as -heads)")
	ffn := fs.Int("ffn", ggufgen.DefaultFFN, "feed-forward dimension")
	ctx := fs.Int("ctx", ggufgen.DefaultContext, "context length")
	pieces := fs.Int("vocab-pieces", ggufgen.DefaultVocabPieces, "word pieces after the special and byte tokens")
	typ := fs.String("type", "f32", "weight matrix type: f32 or f16")
	name := fs.String("name", "", "general.name (default: "+ggufgen.DefaultName+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return fmt.Errorf("-o is required")
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	tt, err := ggufgen.ParseTensorType(*typ)
	if err != nil {
		return err
	}
	cfg := ggufgen.Config{
		Name: *name, Seed: *seed, Layers: *layers, Dim: *dim, Heads: *heads, KVHeads: *kvHeads,
		FFN: *ffn, Context: *ctx, VocabPieces: *pieces, Type: tt,
	}
	size, err := ggufgen.Size(cfg)
	if err != nil {
		return err
	}
	if err := ggufgen.WriteFile(*out, cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\t%d bytes\n", *out, size)
	return nil
}
