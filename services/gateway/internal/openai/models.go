package openai

import (
	"net/http"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// modelID is the id of the LLM's model, or "genailab" when none is known.
func (h *Handler) modelID(r *http.Request) string {
	if h.llm != nil {
		if info, err := h.llm.GetInfo(r.Context(), &llmv1.GetInfoRequest{}); err == nil {
			if id := info.GetInfo().GetModelId(); id != "" {
				return id
			}
		}
	}
	return "genailab"
}

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models lists the LLM's model (the one chat completions use).
func (h *Handler) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"object": "list", "data": []model{{ID: h.modelID(r), Object: "model", Created: time.Now().Unix(), OwnedBy: "genailab"}}})
}
