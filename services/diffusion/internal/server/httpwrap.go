package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/httperr"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/seedjson"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/engine"
)

// maxBody bounds a generation request (a 4000-character prompt is far below it).
const maxBody = 1 << 20

// seedRequest is the seed's POST /v1/images/generations body (ImageGenerationConfig). The
// numbers are pointers so that a field left out (the default) differs from one sent as 0
// (refused by imagereq).
type seedRequest struct {
	Prompt         string   `json:"prompt"`
	NegativePrompt string   `json:"negativePrompt"`
	Width          *int     `json:"width"`
	Height         *int     `json:"height"`
	Steps          *int     `json:"steps"`
	CFGScale       *float64 `json:"cfgScale"`
	Seed           *int64   `json:"seed"`
	Sampler        string   `json:"sampler"`
}

// httpWrapper is the seed's HTTP wrapper: GET /health and POST /v1/images/generations, on the
// same code path as the gRPC API. Every error, including unknown routes (404), wrong methods
// (405), bodies over maxBody (413) and URLs that are not valid UTF-8 (400), is the seed's
// {"error": "..."} with the status package httperr gives its gRPC code, the same status the
// REST gateway answers for the same error.
type httpWrapper struct {
	svc *Service
	eng *engine.Engine
	log *slog.Logger
}

// seedRoutes are the wrapper's routes and their methods (for 405 and its Allow header).
var seedRoutes = map[string]string{
	"/health":                http.MethodGet,
	"/v1/images/generations": http.MethodPost,
}

func (h *httpWrapper) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", h.health)
	mux.HandleFunc("POST /v1/images/generations", h.generate)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if m, ok := seedRoutes[r.URL.Path]; ok {
			if m == http.MethodGet {
				m += ", " + http.MethodHead
			}
			w.Header().Set("Allow", m)
			writeError(w, httperr.MethodNotAllowed(r))
			return
		}
		writeError(w, httperr.NotFound(r))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := httperr.CheckURL(r); err != nil {
			writeError(w, httperr.From(err))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (h *httpWrapper) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "busy": h.eng.Info().Busy})
}

func (h *httpWrapper) generate(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxBody {
		writeError(w, httperr.TooLarge(maxBody))
		return
	}
	var req seedRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	err := dec.Decode(&req)
	if err == nil {
		err = httperr.EndOfBody(dec) // `{"prompt":"x"}0` is not a request
	}
	if err != nil {
		e := httperr.From(err) // 413 for the reader's *http.MaxBytesError
		switch {
		case e.Status == http.StatusRequestEntityTooLarge:
		case errors.Is(err, io.EOF):
			e = httperr.Invalid("empty body: send the image parameters as JSON")
		default:
			e = httperr.InvalidBody(err)
		}
		writeError(w, e)
		return
	}
	res, p, err := h.svc.generate(r.Context(), imagereq.Request{
		Prompt: req.Prompt, NegativePrompt: req.NegativePrompt,
		Width: req.Width, Height: req.Height, Steps: req.Steps,
		CFGScale: req.CFGScale, Seed: req.Seed, Sampler: req.Sampler,
	}, nil)
	if err != nil {
		e := h.classify(r.Context(), err)
		if e.Status >= 500 && e.Code != codes.Unavailable && e.Code != codes.FailedPrecondition {
			h.log.Warn("seed HTTP generation failed", "err", err)
		}
		writeError(w, e)
		return
	}
	body := seedjson.Append(nil, seedjson.Result{
		PNG: res.PNG, Format: "png", TimeTakenMs: res.TimeTaken.Milliseconds(),
		Seed: res.Seed, Width: int64(p.Width), Height: int64(p.Height),
	})
	writeBody(w, http.StatusOK, body)
}

// classify is the answer to a failed generation: the service's rules, except that a
// generation cancelled because the engine is stopping (Stop, the service's shutdown) while
// the client still waits is the engine going away (UNAVAILABLE, 503), not a cancel.
func (h *httpWrapper) classify(ctx context.Context, err error) httperr.Error {
	in := grpcerr.Classify(err, rules...)
	if in.Code == codes.Canceled && ctx.Err() == nil {
		if st := h.eng.Info().Status; st == supervisor.StateStopping || st == supervisor.StateStopped {
			in = grpcerr.Info{Code: codes.Unavailable, Reason: grpcerr.ReasonEngineStopped,
				Message: "the diffusion engine was stopped during the request: " + strings.TrimSpace(in.Message)}
		}
	}
	return httperr.FromInfo(in)
}

// writeError answers e in the seed's exact shape, {"error": "..."}.
func writeError(w http.ResponseWriter, e httperr.Error) { e.Write(w, httperr.Seed) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	writeBody(w, status, b)
}

// writeBody answers status with the JSON body b.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
