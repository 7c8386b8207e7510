package estimate_test

import (
	"math"
	"path/filepath"
	"testing"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/ggufgen"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/services/orchestrator/internal/estimate"
)

// model writes a real GGUF (the project's random-weight llama generator) and returns its
// path and the metadata the LLM service would report for it.
func model(t *testing.T, c ggufgen.Config) (string, *modelsv1.GGUFMetadata) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := ggufgen.WriteFile(path, c); err != nil {
		t.Fatal(err)
	}
	info, err := modelstore.ReadGGUFInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, &modelsv1.GGUFMetadata{
		Architecture: info.Architecture, BlockCount: uint32(info.BlockCount), ContextLength: uint32(info.ContextLength),
		EmbeddingLength: uint32(info.EmbeddingLength), HeadCount: uint32(info.HeadCount), HeadCountKv: uint32(info.HeadCountKV),
		KeyLength: info.KeyLength, ValueLength: info.ValueLength, TensorDataSizeBytes: info.TensorDataSize,
		FeedForwardLength: uint32(info.FeedForwardLength), VocabSize: uint32(info.VocabSize),
	}
}

func bigger() ggufgen.Config {
	return ggufgen.Config{Layers: 4, Dim: 256, Heads: 8, KVHeads: 2, FFN: 512, Context: 4096, Type: ggufgen.F16}
}

func TestKVCacheMatchesTheFormulaInBothMethods(t *testing.T) {
	path, meta := model(t, bigger())
	run := estimate.LLMRun{ContextSize: 2048, GPULayers: 0}
	// layers × KV heads × (key + value length) × context × 2 bytes (f16)
	want := float64(4 * 2 * (32 + 32) * 2048 * 2)
	fromFile, err := estimate.LLMFromFile(path, run)
	if err != nil {
		t.Fatal(err)
	}
	fromMeta, err := estimate.LLMFromMetadata(meta, run)
	if err != nil {
		t.Fatal(err)
	}
	if fromMeta.KVCacheBytes != uint64(want) {
		t.Fatalf("metadata KV cache %d, want %v", fromMeta.KVCacheBytes, want)
	}
	if math.Abs(float64(fromFile.KVCacheBytes)-want)/want > 0.05 {
		t.Fatalf("gguf-parser-go KV cache %d, want about %v", fromFile.KVCacheBytes, want)
	}
	if fromFile.Source != "gguf-parser-go" || fromMeta.Source != "gguf-metadata" {
		t.Fatalf("sources %q %q", fromFile.Source, fromMeta.Source)
	}
	// Weights are the tensor data in both.
	if fromMeta.WeightsBytes != meta.TensorDataSizeBytes {
		t.Fatalf("metadata weights %d, tensor data %d", fromMeta.WeightsBytes, meta.TensorDataSizeBytes)
	}
	if r := float64(fromFile.WeightsBytes) / float64(meta.TensorDataSizeBytes); r < 0.9 || r > 1.1 {
		t.Fatalf("gguf-parser-go weights %d vs tensor data %d", fromFile.WeightsBytes, meta.TensorDataSizeBytes)
	}
}

func TestQuantisedCacheAndContextScaleKV(t *testing.T) {
	_, meta := model(t, bigger())
	f16, _ := estimate.LLMFromMetadata(meta, estimate.LLMRun{ContextSize: 1024})
	q8, _ := estimate.LLMFromMetadata(meta, estimate.LLMRun{ContextSize: 1024, CacheTypeK: "q8_0", CacheTypeV: "q8_0"})
	long, _ := estimate.LLMFromMetadata(meta, estimate.LLMRun{ContextSize: 4096})
	if r := float64(q8.KVCacheBytes) / float64(f16.KVCacheBytes); math.Abs(r-34.0/64) > 1e-9 {
		t.Fatalf("q8_0/f16 KV ratio %v", r)
	}
	if long.KVCacheBytes != 4*f16.KVCacheBytes {
		t.Fatalf("4× context: %d vs %d", long.KVCacheBytes, f16.KVCacheBytes)
	}
	dflt, _ := estimate.LLMFromMetadata(meta, estimate.LLMRun{})
	if dflt.KVCacheBytes != long.KVCacheBytes {
		t.Fatalf("context 0 should use the trained 4096: %d vs %d", dflt.KVCacheBytes, long.KVCacheBytes)
	}
}

func TestGPULayersSplitVRAMAndRAM(t *testing.T) {
	path, meta := model(t, bigger())
	for name, est := range map[string]func(estimate.LLMRun) (estimate.LLM, error){
		"file": func(r estimate.LLMRun) (estimate.LLM, error) { return estimate.LLMFromFile(path, r) },
		"meta": func(r estimate.LLMRun) (estimate.LLM, error) { return estimate.LLMFromMetadata(meta, r) },
	} {
		cpu, err := est(estimate.LLMRun{ContextSize: 1024, GPULayers: 0})
		if err != nil {
			t.Fatal(err)
		}
		all, _ := est(estimate.LLMRun{ContextSize: 1024, GPULayers: -1})
		half, _ := est(estimate.LLMRun{ContextSize: 1024, GPULayers: 2})
		// With no layers offloaded llama.cpp still puts compute buffers on a GPU it has.
		if cpu.VRAMBytes >= all.VRAMBytes || cpu.RAMBytes == 0 {
			t.Fatalf("%s: no GPU layers gave VRAM %d RAM %d", name, cpu.VRAMBytes, cpu.RAMBytes)
		}
		host, _ := est(estimate.LLMRun{ContextSize: 1024, GPULayers: -1, NoGPU: true})
		if host.VRAMBytes != 0 || host.RAMBytes != all.VRAMBytes+all.RAMBytes {
			t.Fatalf("%s: host without GPU: VRAM %d RAM %d (all: %d+%d)", name, host.VRAMBytes, host.RAMBytes, all.VRAMBytes, all.RAMBytes)
		}
		if all.VRAMBytes == 0 || all.RAMBytes >= cpu.RAMBytes {
			t.Fatalf("%s: all layers gave VRAM %d RAM %d (cpu RAM %d)", name, all.VRAMBytes, all.RAMBytes, cpu.RAMBytes)
		}
		if !(half.VRAMBytes > 0 && half.VRAMBytes < all.VRAMBytes) {
			t.Fatalf("%s: half the layers gave VRAM %d (all %d)", name, half.VRAMBytes, all.VRAMBytes)
		}
		if all.OffloadLayers != 5 || all.TotalLayers != 4 {
			t.Fatalf("%s: offload %d of %d", name, all.OffloadLayers, all.TotalLayers)
		}
	}
}

func TestLLMFromFileRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.gguf")
	if err := ggufgen.WriteFile(path, ggufgen.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := estimate.LLMFromFile(filepath.Join(t.TempDir(), "missing.gguf"), estimate.LLMRun{}); err == nil {
		t.Fatal("missing file estimated")
	}
	if _, err := estimate.LLMFromMetadata(&modelsv1.GGUFMetadata{}, estimate.LLMRun{}); err == nil {
		t.Fatal("empty metadata estimated")
	}
}

func TestDiffusionEstimate(t *testing.T) {
	base := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 2 << 30, Width: 512, Height: 512})
	if want := float64(2<<30) * estimate.DefaultWeightsFactor; base.WeightsBytes != uint64(want) {
		t.Fatalf("weights %d", base.WeightsBytes)
	}
	if base.ActivationBytes != 512*512*estimate.DefaultBytesPerPixel {
		t.Fatalf("activations %d", base.ActivationBytes)
	}
	if base.OverheadBytes != estimate.DefaultCLIOverheadBytes || base.TotalBytes != base.WeightsBytes+base.OverheadBytes+base.ActivationBytes {
		t.Fatalf("512² in CLI mode: %+v", base)
	}
	big := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 2 << 30, Width: 1024, Height: 1024})
	if big.ActivationBytes != 4*base.ActivationBytes || big.TotalBytes != big.WeightsBytes+big.OverheadBytes+big.ActivationBytes {
		t.Fatalf("1024²: %+v", big)
	}
	srv := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 2 << 30, Width: 512, Height: 512, Mode: estimate.ModeServer})
	if srv.OverheadBytes != estimate.DefaultServerOverheadBytes || srv.TotalBytes-base.TotalBytes != estimate.DefaultServerOverheadBytes-estimate.DefaultCLIOverheadBytes {
		t.Fatalf("server mode: %+v vs cli %+v", srv, base)
	}
	if srv.ResidentBytes() != srv.WeightsBytes+srv.OverheadBytes {
		t.Fatalf("resident %d", srv.ResidentBytes())
	}
	up := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 2 << 30, Width: 512, Height: 512, CorrectionBytes: 1 << 20})
	if up.TotalBytes != base.TotalBytes+1<<20 {
		t.Fatalf("positive correction: %d vs %d", up.TotalBytes, base.TotalBytes)
	}
	down := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 2 << 30, Width: 512, Height: 512, CorrectionBytes: -(8 << 30)})
	if down.TotalBytes != down.WeightsBytes {
		t.Fatalf("a large negative correction must stop at the weights: %+v", down)
	}
}

func TestDiffusionEstimateAlignsTheSizeLikeSDCPP(t *testing.T) {
	// sd.cpp generates 60x64 as 64x64 and 100x100 as 128x128.
	for _, c := range []struct{ w, h, aw, ah int }{{60, 64, 64, 64}, {72, 64, 128, 64}, {100, 100, 128, 128}, {512, 512, 512, 512}} {
		got := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 1 << 20, Width: c.w, Height: c.h})
		want := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 1 << 20, Width: c.aw, Height: c.ah})
		if got != want {
			t.Errorf("%dx%d: %+v, want the %dx%d estimate %+v", c.w, c.h, got, c.aw, c.ah, want)
		}
	}
}

func TestLearnConvergesOnTheMeasuredPeak(t *testing.T) {
	var avg float64
	for i := 0; i < 12; i++ {
		avg = estimate.Learn(avg, i, 1000, 1600)
	}
	if math.Abs(avg-600) > 1 {
		t.Fatalf("correction after repeated runs %v, want 600", avg)
	}
	if got := estimate.Learn(0, 0, 1000, 800); got != -200 {
		t.Fatalf("first sample: %v", got)
	}
}

func TestDiffusionEstimateCountsBatchEditAndPreviews(t *testing.T) {
	base := estimate.DiffusionParams{ComponentBytes: 100 << 20, Width: 512, Height: 512}
	one := estimate.EstimateDiffusion(base)
	four := base
	four.Images, four.Edit, four.DecodedPreviews = 4, true, true
	got := estimate.EstimateDiffusion(four).TotalBytes - one.TotalBytes
	want := uint64(512 * 512 * (3*estimate.BatchBytesPerPixel + estimate.EditBytesPerPixel + estimate.PreviewBytesPerPixel))
	if got != want {
		t.Errorf("batch of 4 with an edit and vae previews adds %d bytes, want %d", got, want)
	}
	if b := estimate.EstimateDiffusion(estimate.DiffusionParams{ComponentBytes: 100 << 20, Width: 512, Height: 512, Images: 1}); b.TotalBytes != one.TotalBytes {
		t.Error("n=1 differs from no batch")
	}
}
