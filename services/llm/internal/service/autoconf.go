package service

import (
	"github.com/genailab/genailab/pkg/modelstore"
)

// Automatic configuration. The rules are deliberately simple and visible in
// the resolved configuration every Start returns:
//
//   - threads: the physical cores the service may run on (HostFacts.Threads);
//     llama.cpp is memory-bound and gains nothing from hyper-threads.
//   - context: the model's training context (GGUF llama.context_length),
//     capped at MaxAutoContext, and lowered so that the KV cache takes at most
//     half of the memory left after the model's weights.
//   - GPU layers: 0 on a host without a GPU device; with a GPU the value is
//     left to llama-server, which fits the layers into free VRAM itself
//     (its --fit, on by default), so the resolved config leaves it unset.

// fallbackContext is used when the model's metadata cannot be read (the
// model will most likely fail to load, and say why in the log tail).
const fallbackContext = 4096

// minAutoContext is the smallest context chosen for memory reasons (unless
// the model's own context is smaller): below it a chat is hardly possible, so
// llama-server is rather left to fail with its own clear message.
const minAutoContext = 512

// cacheTypeBytes is the size of one KV cache element per cache type
// (block types: block bytes / 32 elements).
var cacheTypeBytes = map[string]float64{
	"f32": 4, "f16": 2, "bf16": 2,
	"q8_0": 34.0 / 32, "q4_0": 18.0 / 32, "q4_1": 20.0 / 32,
	"iq4_nl": 18.0 / 32, "q5_0": 22.0 / 32, "q5_1": 24.0 / 32,
}

// kvBytesPerToken is the KV cache size of one token of context.
func kvBytesPerToken(info *modelstore.GGUFInfo, cacheK, cacheV string) float64 {
	heads := info.HeadCount
	kvHeads := info.HeadCountKV
	if kvHeads == 0 {
		kvHeads = heads
	}
	var headDim uint64
	if heads > 0 {
		headDim = info.EmbeddingLength / heads
	}
	kLen, vLen := uint64(info.KeyLength), uint64(info.ValueLength)
	if kLen == 0 {
		kLen = headDim
	}
	if vLen == 0 {
		vLen = headDim
	}
	kb, vb := cacheTypeBytes[cacheK], cacheTypeBytes[cacheV]
	if kb == 0 {
		kb = 2 // llama-server's default f16
	}
	if vb == 0 {
		vb = 2
	}
	return float64(info.BlockCount*kvHeads) * (float64(kLen)*kb + float64(vLen)*vb)
}

// autoContext picks the context size (see the rules above). info may be nil
// (metadata unreadable); memAvail 0 means unknown.
func autoContext(info *modelstore.GGUFInfo, cacheK, cacheV string, memAvail, modelBytes uint64, maxCtx int) int {
	if info == nil || info.ContextLength == 0 {
		return min(fallbackContext, maxCtx)
	}
	train := int(min(info.ContextLength, 1<<30))
	ctx := min(train, maxCtx)
	if perTok := kvBytesPerToken(info, cacheK, cacheV); memAvail > 0 && perTok > 0 {
		var budget uint64
		if memAvail > modelBytes {
			budget = (memAvail - modelBytes) / 2
		}
		if memCtx := float64(budget) / perTok; memCtx < float64(ctx) {
			ctx = int(memCtx)
		}
	}
	if floor := min(train, minAutoContext); ctx < floor {
		ctx = floor
	}
	if ctx > minAutoContext && ctx != train {
		ctx -= ctx % 256
	}
	return ctx
}

// autoGPULayers returns the -ngl value chosen when none is given: 0 without
// a GPU, nil (llama-server decides) with one.
func autoGPULayers(gpu bool) *int32 {
	if gpu {
		return nil
	}
	zero := int32(0)
	return &zero
}
