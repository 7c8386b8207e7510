package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/services/diffusion/internal/engine"
	"github.com/genailab/genailab/services/diffusion/internal/imagereq"
)

// maxBody bounds a generation request (a 4000-character prompt is far below it).
const maxBody = 1 << 20

// seedRequest is the seed's POST /v1/images/generations body (ImageGenerationConfig).
type seedRequest struct {
	Prompt         string   `json:"prompt"`
	NegativePrompt string   `json:"negativePrompt"`
	Width          int      `json:"width"`
	Height         int      `json:"height"`
	Steps          int      `json:"steps"`
	CFGScale       *float64 `json:"cfgScale"`
	Seed           *int64   `json:"seed"`
	Sampler        string   `json:"sampler"`
}

// seedResponse is the seed's result (ImageGenerationResult, image as base64).
type seedResponse struct {
	Image     string `json:"image"`
	Format    string `json:"format"`
	TimeTaken int64  `json:"timeTaken"` // milliseconds
	Seed      int64  `json:"seed"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// httpWrapper is the seed's HTTP wrapper: GET /health and POST /v1/images/generations, on the
// same code path as the gRPC API.
type httpWrapper struct {
	svc *Service
	eng *engine.Engine
	log *slog.Logger
}

func (h *httpWrapper) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", h.health)
	mux.HandleFunc("POST /v1/images/generations", h.generate)
	return mux
}

func (h *httpWrapper) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "busy": h.eng.Info().Busy})
}

func (h *httpWrapper) generate(w http.ResponseWriter, r *http.Request) {
	var req seedRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	if err := dec.Decode(&req); err != nil {
		msg := "invalid JSON body: " + err.Error()
		if errors.Is(err, io.EOF) {
			msg = "empty body: send the image parameters as JSON"
		}
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	res, p, err := h.svc.generate(r.Context(), imagereq.Request{
		Prompt: req.Prompt, NegativePrompt: req.NegativePrompt,
		Width: req.Width, Height: req.Height, Steps: req.Steps,
		CFGScale: req.CFGScale, Seed: req.Seed, Sampler: req.Sampler,
	}, nil)
	if err != nil {
		status := httpStatus(err)
		if status == http.StatusInternalServerError {
			h.log.Warn("seed HTTP generation failed", "err", err)
		}
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, seedResponse{
		Image:     base64.StdEncoding.EncodeToString(res.PNG),
		Format:    "png",
		TimeTaken: res.TimeTaken.Milliseconds(),
		Seed:      res.Seed,
		Width:     p.Width,
		Height:    p.Height,
	})
}

// httpStatus is the seed's mapping: 400 for bad input, 503 when busy (or not started), 500
// otherwise.
func httpStatus(err error) int {
	switch codeOf(err) {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unavailable, codes.FailedPrecondition:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
