// Package modelservice serves genailab.models.v1.ModelService over one
// modelstore.Store. The LLM service registers it for type llm and the
// diffusion service for type diffusion; requests for another type are
// refused. Domain errors of the store become gRPC codes here, at the edge.
package modelservice
