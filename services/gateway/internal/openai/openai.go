// Package openai is the gateway's OpenAI-compatible surface under /openai/v1/, so that the
// official OpenAI SDKs work with baseURL = http://host:8080/openai/v1:
//
//	POST /openai/v1/images/generations  → the orchestrator (queue, offload, reload)
//	POST /openai/v1/chat/completions    → the LLM service's Chat (stream: server-sent events)
//	GET  /openai/v1/models              → the LLM's model
//
// Errors keep the gateway's shape, {"error": "..."}, with the HTTP status of the gRPC code.
package openai

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// Prefix is where the surface is mounted.
const Prefix = "/openai/v1/"

// Handler serves the OpenAI-compatible routes.
type Handler struct {
	orch orchestratorv1.OrchestratorServiceClient
	llm  llmv1.LLMServiceClient
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the handler. A nil client makes its routes answer 503.
func New(orch orchestratorv1.OrchestratorServiceClient, llm llmv1.LLMServiceClient, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{orch: orch, llm: llm, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST "+Prefix+"images/generations", h.images)
	h.mux.HandleFunc("POST "+Prefix+"chat/completions", h.chat)
	h.mux.HandleFunc("GET "+Prefix+"models", h.models)
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// retryAfterSeconds is the hint sent with 429 and 503 answers, as in the rest of the gateway.
const retryAfterSeconds = 2

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// writeGRPCError answers a backend error with the status of its gRPC code.
func writeGRPCError(w http.ResponseWriter, err error) {
	s := status.Convert(err)
	writeError(w, runtime.HTTPStatusFromCode(s.Code()), s.Message())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body into v, answering 400 (or 413) itself on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if asMaxBytes(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}
