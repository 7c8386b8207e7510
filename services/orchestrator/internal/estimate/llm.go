package estimate

import (
	"errors"
	"fmt"
	"strings"

	gguf "github.com/gpustack/gguf-parser-go"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
)

// LLMRun is the part of llama-server's configuration that decides its memory.
type LLMRun struct {
	// ContextSize in tokens (-c); 0 uses the model's trained context.
	ContextSize int
	// GPULayers (-ngl): -1 means all; 0 none. On a host without a GPU use 0.
	GPULayers int
	// CacheTypeK and CacheTypeV are the KV cache types ("f16" when empty).
	CacheTypeK, CacheTypeV string
	// FlashAttention is on.
	FlashAttention bool
	// Parallel is the number of sequences (-np); 0 means 1.
	Parallel int
	// NoGPU says the host has no GPU: everything is counted in RAM.
	NoGPU bool
}

// cpuOnly moves what an estimate put on a GPU into RAM, for hosts without one.
func (e LLM) cpuOnly() LLM {
	e.RAMBytes += e.VRAMBytes
	e.VRAMBytes = 0
	e.OffloadLayers = 0
	return e
}

// LLM is an estimate of llama-server's memory.
type LLM struct {
	// VRAMBytes is what it occupies on the GPU (0 without GPU layers).
	VRAMBytes uint64
	// RAMBytes is what it occupies in system memory (weights not on the GPU, host buffers).
	RAMBytes uint64
	// WeightsBytes, KVCacheBytes and ComputeBytes are the parts over both memories.
	WeightsBytes, KVCacheBytes, ComputeBytes uint64
	// OffloadLayers of TotalLayers are on the GPU.
	OffloadLayers, TotalLayers int
	// Source names the method: "gguf-parser-go" or "gguf-metadata".
	Source string
}

// Total is VRAM plus RAM.
func (e LLM) Total() uint64 { return e.VRAMBytes + e.RAMBytes }

// LLMFromFile estimates with gguf-parser-go's llama.cpp estimator from the GGUF file at
// path (the first shard of a split model).
func LLMFromFile(path string, run LLMRun) (est LLM, err error) {
	defer func() {
		// The parser reads untrusted bytes; a crafted file must not crash the orchestrator.
		if r := recover(); r != nil {
			est, err = LLM{}, fmt.Errorf("estimate %s: parser panic: %v", path, r)
		}
	}()
	f, err := gguf.ParseGGUFFile(path, gguf.SkipLargeMetadata())
	if err != nil {
		return LLM{}, fmt.Errorf("parse gguf %s: %w", path, err)
	}
	opts := []gguf.GGUFRunEstimateOption{gguf.WithLLaMACppLogicalBatchSize(2048), gguf.WithLLaMACppPhysicalBatchSize(512)}
	if run.ContextSize > 0 {
		opts = append(opts, gguf.WithLLaMACppContextSize(int32(run.ContextSize)))
	}
	layers := f.Architecture().BlockCount
	switch {
	case run.GPULayers < 0:
		opts = append(opts, gguf.WithLLaMACppOffloadLayers(layers+1))
	default:
		opts = append(opts, gguf.WithLLaMACppOffloadLayers(uint64(run.GPULayers)))
	}
	if t, ok := ggmlCacheType(run.CacheTypeK); ok {
		opts = append(opts, gguf.WithLLaMACppCacheKeyType(t))
	}
	if t, ok := ggmlCacheType(run.CacheTypeV); ok {
		opts = append(opts, gguf.WithLLaMACppCacheValueType(t))
	}
	if run.FlashAttention {
		opts = append(opts, gguf.WithFlashAttention())
	}
	if run.Parallel > 1 {
		opts = append(opts, gguf.WithParallelSize(int32(run.Parallel)))
	}
	e := f.EstimateLLaMACppRun(opts...)
	// mmap=false: count the weights where they end up resident, which is what a stop frees.
	s := e.SummarizeItem(false, 0, 0)
	out := LLM{
		RAMBytes:      uint64(s.RAM.NonUMA),
		OffloadLayers: int(s.OffloadLayers), // counts the output layer, like -ngl
		TotalLayers:   int(layers),
		Source:        "gguf-parser-go",
	}
	for _, v := range s.VRAMs {
		out.VRAMBytes += uint64(v.NonUMA)
	}
	out.WeightsBytes = uint64(e.Devices[0].Weight.Sum())
	out.KVCacheBytes = uint64(e.Devices[0].KVCache.Sum())
	out.ComputeBytes = uint64(e.Devices[0].Computation.Sum())
	for _, d := range e.Devices[1:] {
		out.WeightsBytes += uint64(d.Weight.Sum())
		out.KVCacheBytes += uint64(d.KVCache.Sum())
		out.ComputeBytes += uint64(d.Computation.Sum())
	}
	if run.NoGPU {
		out = out.cpuOnly()
	}
	return out, nil
}

// ubatch is llama-server's default physical batch size, which sizes the compute buffers.
const ubatch = 512

// LLMFromMetadata estimates from the GGUF metadata the LLM service reports, for when the
// model file is not readable here:
//
//	weights = tensor data, split between GPU and RAM by the share of layers offloaded
//	KV cache = layers × KV heads × (key length + value length) × context × bytes per element
//	compute = 4 bytes × ubatch × (vocab + 4 × embedding) [+ 4 × ubatch × context × heads without flash attention]
//
// The KV cache and compute buffers sit with the layers: on the GPU when any layer is.
func LLMFromMetadata(m *modelsv1.GGUFMetadata, run LLMRun) (LLM, error) {
	if m == nil || m.GetBlockCount() == 0 || m.GetEmbeddingLength() == 0 || m.GetHeadCount() == 0 {
		return LLM{}, errors.New("estimate from GGUF metadata: block count, embedding length and head count are required")
	}
	L := int(m.GetBlockCount())
	ctx := run.ContextSize
	if ctx <= 0 {
		ctx = int(m.GetContextLength())
	}
	kvHeads := uint64(m.GetHeadCountKv())
	if kvHeads == 0 {
		kvHeads = uint64(m.GetHeadCount())
	}
	kl, vl := uint64(m.GetKeyLength()), uint64(m.GetValueLength())
	if kl == 0 {
		kl = uint64(m.GetEmbeddingLength() / m.GetHeadCount())
	}
	if vl == 0 {
		vl = kl
	}
	kBytes, _ := cacheTypeBytes(run.CacheTypeK)
	vBytes, _ := cacheTypeBytes(run.CacheTypeV)
	kv := uint64(float64(uint64(L)*kvHeads*kl*uint64(ctx))*kBytes + float64(uint64(L)*kvHeads*vl*uint64(ctx))*vBytes)
	compute := 4 * ubatch * (uint64(m.GetVocabSize()) + 4*uint64(m.GetEmbeddingLength()))
	if !run.FlashAttention {
		compute += 4 * ubatch * uint64(min(ctx, ubatch)) * uint64(m.GetHeadCount())
	}
	weights := m.GetTensorDataSizeBytes()
	offload := run.GPULayers
	if offload < 0 || offload > L+1 {
		offload = L + 1 // every block and the output layer
	}
	gpuShare := float64(offload) / float64(L+1)
	out := LLM{WeightsBytes: weights, KVCacheBytes: kv, ComputeBytes: compute, OffloadLayers: offload, TotalLayers: L, Source: "gguf-metadata"}
	gpuWeights := uint64(float64(weights) * gpuShare)
	if offload > 0 {
		out.VRAMBytes = gpuWeights + kv + compute
		out.RAMBytes = weights - gpuWeights
	} else {
		out.RAMBytes = weights + kv + compute
	}
	if run.NoGPU {
		out = out.cpuOnly()
	}
	return out, nil
}

// cacheTypeBytes is the bytes per element of a KV cache type (ggml block sizes: q8_0 is
// 34 bytes per 32 values, and so on). Unknown or empty types count as f16.
func cacheTypeBytes(t string) (float64, bool) {
	switch strings.ToLower(t) {
	case "", "f16", "bf16":
		return 2, true
	case "f32":
		return 4, true
	case "q8_0":
		return 34.0 / 32, true
	case "q4_0", "iq4_nl":
		return 18.0 / 32, true
	case "q4_1":
		return 20.0 / 32, true
	case "q5_0":
		return 22.0 / 32, true
	case "q5_1":
		return 24.0 / 32, true
	}
	return 2, false
}

func ggmlCacheType(t string) (gguf.GGMLType, bool) {
	switch strings.ToLower(t) {
	case "f32":
		return gguf.GGMLTypeF32, true
	case "f16":
		return gguf.GGMLTypeF16, true
	case "bf16":
		return gguf.GGMLTypeBF16, true
	case "q8_0":
		return gguf.GGMLTypeQ8_0, true
	case "q4_0":
		return gguf.GGMLTypeQ4_0, true
	case "q4_1":
		return gguf.GGMLTypeQ4_1, true
	case "q5_0":
		return gguf.GGMLTypeQ5_0, true
	case "q5_1":
		return gguf.GGMLTypeQ5_1, true
	case "iq4_nl":
		return gguf.GGMLTypeIQ4_NL, true
	}
	return 0, false
}
