// Package openai is the gateway's OpenAI-compatible surface under /openai/v1/, so that the
// official OpenAI SDKs work with baseURL = http://host:8080/openai/v1:
//
//	POST /openai/v1/images/generations  → the orchestrator (queue, offload, reload);
//	                                      "stream": true answers server-sent events
//	POST /openai/v1/images/edits        → the same, with an uploaded image (and mask)
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
	"maps"
	"net/http"
	"slices"
	"strings"

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
	for pattern, handle := range h.routeTable() {
		h.mux.HandleFunc(pattern, handle)
	}
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

// routeTable is the surface's routes: http.ServeMux patterns ("METHOD path") and their
// handlers.
func (h *Handler) routeTable() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST " + Prefix + "images/generations": h.images,
		"POST " + EditsPath:                     h.edits,
		"POST " + Prefix + "chat/completions":   h.chat,
		"GET " + Prefix + "models":              h.models,
	}
}

// Routes lists the surface's routes as "METHOD path", sorted (for the gateway's route
// checks, such as the auth refusals of every route).
func Routes() []string { return slices.Sorted(maps.Keys((*Handler)(nil).routeTable())) }

// routes are the surface's paths, for 405 on a known path asked with another method.
var routes = func() map[string]bool {
	paths := map[string]bool{}
	for _, r := range Routes() {
		_, path, _ := strings.Cut(r, " ")
		paths[path] = true
	}
	return paths
}()

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

// decode reads a JSON body, one JSON value and nothing after it but white space, into v,
// answering 400 (or 413, for a body over the gateway's limit) itself on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil {
		if err = httperr.EndOfBody(dec); err == nil {
			return true
		}
	}
	e := httperr.From(err) // 413 for an *http.MaxBytesError
	if e.Status != http.StatusRequestEntityTooLarge {
		e = httperr.InvalidBody(err)
	}
	writeError(w, e)
	return false
}
