// Package openai is the gateway's OpenAI-compatible surface under /openai/v1/, so that the
// official OpenAI SDKs work with baseURL = http://host:8080/openai/v1:
//
//	POST /openai/v1/images/generations  → the orchestrator (queue, offload, reload)
//	POST /openai/v1/chat/completions    → the LLM service's Chat (stream: server-sent events)
//	GET  /openai/v1/models              → the LLM's model
//
// Errors are OpenAI's error object, {"error": {"message", "type", "code", "param"}}, with
// the HTTP status package httperr gives the backend's gRPC code (the same as on the rest
// of the gateway); "code" is the error's reason in lower case ("queue_full").
package openai

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"google.golang.org/grpc/codes"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/httperr"
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
		if _, ok := routes[r.URL.Path]; ok {
			writeError(w, httperr.MethodNotAllowed(r))
			return
		}
		writeError(w, httperr.NotFound(r))
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// routes are the surface's paths, for 405 on a known path asked with another method.
var routes = map[string]bool{Prefix + "images/generations": true, Prefix + "chat/completions": true, Prefix + "models": true}

// writeError answers e as OpenAI's error object.
func writeError(w http.ResponseWriter, e httperr.Error) { e.Write(w, httperr.OpenAI) }

// writeGRPCError answers a backend error with the status of its gRPC code.
func writeGRPCError(w http.ResponseWriter, err error) { writeError(w, httperr.From(err)) }

// unavailable is the 503 of a backend that is not configured.
func unavailable(msg string) httperr.Error { return httperr.New(codes.Unavailable, "NO_BACKEND", msg) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body into v, answering 400 (or 413, for a body over the gateway's
// limit) itself on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		e := httperr.From(err) // 413 for an *http.MaxBytesError
		if e.Status != http.StatusRequestEntityTooLarge {
			e = httperr.InvalidBody(err)
		}
		writeError(w, e)
		return false
	}
	return true
}
