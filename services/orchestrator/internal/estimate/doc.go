// Package estimate computes explainable memory estimates: what the LLM occupies (from its
// GGUF file with gguf-parser-go's llama.cpp estimator, or from the GGUF metadata the LLM
// service reports when the file cannot be read here) and what one image needs from the
// diffusion engine (component sizes × a factor + a term growing with width × height,
// corrected by what past runs were measured to use).
//
// Every function is pure: the numbers in, an estimate with its parts out.
package estimate
