package estimate

import (
	"fmt"

	gguf "github.com/gpustack/gguf-parser-go"
)

// DiffusionFromFile estimates one image with gguf-parser-go's stable-diffusion.cpp
// estimator from the GGUF file at path, on the CPU (no layer offloaded): weights are the
// tensors of every component, activations the compute buffers and footprints it adds for
// width × height. It is kept to compare against EstimateDiffusion and the measured peaks
// (see MEMORY.md): on this engine version it is further from them, so the orchestrator
// decides with EstimateDiffusion.
func DiffusionFromFile(path string, width, height int) (est Diffusion, err error) {
	defer func() {
		// The parser reads untrusted bytes; a crafted file must not crash the orchestrator.
		if r := recover(); r != nil {
			est, err = Diffusion{}, fmt.Errorf("estimate %s: parser panic: %v", path, r)
		}
	}()
	if width <= 0 {
		width = 512
	}
	if height <= 0 {
		height = 512
	}
	f, err := gguf.ParseGGUFFile(path, gguf.SkipLargeMetadata())
	if err != nil {
		return Diffusion{}, fmt.Errorf("parse gguf %s: %w", path, err)
	}
	e := f.EstimateStableDiffusionCppRun(
		gguf.WithStableDiffusionCppOffloadLayers(0),
		gguf.WithStableDiffusionCppWidth(uint32(width)),
		gguf.WithStableDiffusionCppHeight(uint32(height)),
	)
	var weights uint64
	add := func(r *gguf.StableDiffusionCppRunEstimate) {
		for _, d := range r.Devices {
			weights += uint64(d.Weight)
		}
	}
	add(&e)
	if e.Autoencoder != nil {
		add(e.Autoencoder)
	}
	for i := range e.Conditioners {
		add(&e.Conditioners[i])
	}
	s := e.SummarizeItem(false, 0, 0)
	total := uint64(s.RAM.UMA)
	for _, v := range s.VRAMs {
		total += uint64(v.NonUMA)
	}
	return Diffusion{WeightsBytes: weights, ActivationBytes: total - min(total, weights), TotalBytes: total}, nil
}
