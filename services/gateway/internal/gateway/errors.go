package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/genailab/genailab/pkg/httperr"
)

// The gateway answers every error through package httperr: the status of the gRPC code,
// Retry-After from the backend's RetryInfo, and a JSON body. The seed contract's own
// routes answer exactly {"error": "..."}; every other route adds "code" and "reason".

// seedRoutes are the seed contract's routes (method and path), whose error bodies stay
// exactly the seed's.
var seedRoutes = map[string]string{
	"/v1/images/generations": http.MethodPost,
	"/health":                http.MethodGet,
}

func styleOf(r *http.Request) httperr.Style {
	if _, ok := seedRoutes[r.URL.Path]; ok {
		return httperr.Seed
	}
	return httperr.REST
}

// edgeKey finds a request's *edgeState in its context.
type edgeKey struct{}

// edgeState is what the gateway's edge learns about a request on its way: whether its
// body went over the limit (grpc-gateway turns the read error into InvalidArgument text,
// losing the *http.MaxBytesError) and the error a stream ended with.
type edgeState struct {
	tooBig *http.MaxBytesError
	w      *edgeWriter
}

func stateOf(ctx context.Context) *edgeState {
	s, _ := ctx.Value(edgeKey{}).(*edgeState)
	return s
}

// edge wraps every API request: a URL that is not valid UTF-8 is refused (400), the body
// is capped (413 when it is over the limit, told by its Content-Length or by the
// *http.MaxBytesError of a read), and the response writer lets a stream that fails before
// its first message answer with the status of its error.
func edge(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := httperr.CheckURL(r); err != nil {
			httperr.From(err).Write(w, styleOf(r))
			return
		}
		if r.ContentLength > max {
			httperr.TooLarge(max).Write(w, styleOf(r))
			return
		}
		st := &edgeState{}
		st.w = &edgeWriter{ResponseWriter: w, st: st}
		r.Body = &recordingBody{ReadCloser: http.MaxBytesReader(w, r.Body, max), st: st}
		next.ServeHTTP(st.w, r.WithContext(context.WithValue(r.Context(), edgeKey{}, st)))
	})
}

// recordingBody notes a body that went over the limit.
type recordingBody struct {
	io.ReadCloser
	st *edgeState
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooBig *http.MaxBytesError
	if err != nil && errors.As(err, &tooBig) {
		b.st.tooBig = tooBig
	}
	return n, err
}

// edgeWriter is the response writer of an API request. Once a stream's error is known
// (handleStreamError) and nothing has been written yet, the status grpc-gateway writes
// is replaced by httperr's, with its headers.
type edgeWriter struct {
	http.ResponseWriter
	st      *edgeState
	pending *httperr.Error
	started bool // a status or body byte went out
}

func (w *edgeWriter) WriteHeader(code int) {
	if !w.started && w.pending != nil {
		e := *w.pending
		h := w.Header()
		h.Del("Transfer-Encoding")
		e.SetHeaders(h)
		code = e.Status
	}
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *edgeWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher (the OpenAI surface's events, grpc-gateway's streams).
func (w *edgeWriter) Flush() {
	w.started = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *edgeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handleError is the gateway's error handler for unary calls and for streams that failed
// before their first call returned.
func handleError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	var hs *runtime.HTTPStatusError
	if errors.As(err, &hs) {
		err = hs.Err
	}
	e := httperr.From(err)
	if st := stateOf(r.Context()); st != nil && st.tooBig != nil && e.Code == codes.InvalidArgument {
		// grpc-gateway reported the body's read error as text; the reader saw its type.
		e = httperr.From(st.tooBig)
	}
	w.Header().Del("Trailer")
	w.Header().Del("Transfer-Encoding")
	e.Write(w, styleOf(r))
}

// handleStreamError is grpc-gateway's stream error handler: it remembers the error, so
// that a stream failing before its first message gets the status of its error (see
// edgeWriter), and returns the status that streamMarshaler turns into the last line.
func handleStreamError(ctx context.Context, err error) *status.Status {
	if st := stateOf(ctx); st != nil {
		e := httperr.From(err)
		st.w.pending = &e
	}
	return status.Convert(err)
}

// handleRoutingError answers unknown paths (404) and wrong methods (405) in the same shape.
func handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	switch code {
	case http.StatusNotFound:
		httperr.NotFound(r).Write(w, styleOf(r))
	case http.StatusMethodNotAllowed:
		httperr.MethodNotAllowed(r).Write(w, styleOf(r))
	default:
		e := httperr.Invalid(http.StatusText(code))
		e.Status = code
		e.Write(w, styleOf(r))
	}
}
