package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// retryAfterSeconds is the Retry-After hint sent with 429 and 503 answers.
const retryAfterSeconds = 2

// errorBody is the seed's error shape: {"error": "<message>"}.
type errorBody struct {
	Error string `json:"error"`
}

// writeError writes {"error": msg} with status code.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg})
}

// httpStatus maps a gRPC code to its HTTP status (grpc-gateway's table: InvalidArgument
// and FailedPrecondition 400, NotFound 404, ResourceExhausted 429, Unavailable 503, ...).
func httpStatus(c codes.Code) int { return runtime.HTTPStatusFromCode(c) }

// handleError is the gateway's error handler: every error becomes {"error": "..."}.
func handleError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	s := status.Convert(err)
	code := httpStatus(s.Code())
	msg := s.Message()
	// grpc-gateway turns a body decoding error into InvalidArgument; a body over the
	// limit (http.MaxBytesReader) deserves its own status.
	if strings.Contains(msg, "http: request body too large") {
		code, msg = http.StatusRequestEntityTooLarge, "request body too large"
	}
	writeError(w, code, msg)
}

// handleRoutingError answers unknown paths (404) and wrong methods (405) in the same shape.
func handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusNotFound:
		writeError(w, httpStatus, "no such endpoint: "+r.Method+" "+r.URL.Path)
	case http.StatusMethodNotAllowed:
		writeError(w, httpStatus, "method "+r.Method+" not allowed on "+r.URL.Path)
	default:
		writeError(w, httpStatus, http.StatusText(httpStatus))
	}
}
