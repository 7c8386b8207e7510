// Package presetid names the presets of modelstore's built-in catalog, so that a client
// can name one (in its help, in its examples) without importing the store and its GGUF
// parser, and without a copy of the name that could drift from the catalog.
package presetid

// The ids of the built-in presets; modelstore's catalog is defined with them.
const (
	// Qwen25Instruct05BQ4KM is the smallest chat model of the catalog (an llm preset).
	Qwen25Instruct05BQ4KM = "qwen2.5-0.5b-instruct-q4_k_m"
	// Llama32Instruct1BQ4KM is Meta's small chat model (an llm preset).
	Llama32Instruct1BQ4KM = "llama-3.2-1b-instruct-q4_k_m"
	// StableDiffusion15Q51 is Stable Diffusion 1.5 in one file (a diffusion preset).
	StableDiffusion15Q51 = "stable-diffusion-v1-5-q5_1"
	// Flux1SchnellQ4K is FLUX.1 schnell in four parts (a diffusion preset).
	Flux1SchnellQ4K = "flux.1-schnell-q4_k"
)
