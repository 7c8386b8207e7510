// Package httperr is genailab's one HTTP error edge: it turns an error (a gRPC status
// from a backend, a domain error with its service's grpcerr rules, a body over the
// limit) into an HTTP status, headers and a JSON body. The REST gateway, its OpenAI
// surface and the diffusion service's seed wrapper all answer through it, so the same
// gRPC code gives the same HTTP status everywhere.
//
// # Statuses
//
//	gRPC code            HTTP  note
//	OK                   200
//	INVALID_ARGUMENT     400   bad input (the seed's 400)
//	OUT_OF_RANGE         400
//	UNAUTHENTICATED      401
//	PERMISSION_DENIED    403
//	NOT_FOUND            404
//	ALREADY_EXISTS       409
//	ABORTED              409
//	RESOURCE_EXHAUSTED   429   queue full; Retry-After
//	CANCELLED            500   see below
//	UNKNOWN, INTERNAL    500   the seed's 500
//	DATA_LOSS            500
//	UNIMPLEMENTED        501
//	UNAVAILABLE          503   busy ("Server is busy generating another image"); Retry-After
//	FAILED_PRECONDITION  503   see below; Retry-After (400 for UNSUPPORTED_IN_MODE)
//	DEADLINE_EXCEEDED    504
//
// This is grpc-gateway's table (runtime.HTTPStatusFromCode, the google.rpc.Code
// mapping) with two deliberate differences:
//
//   - FAILED_PRECONDITION is 503, not 400. In genailab it always names a state of the
//     server, never a fault of the request: the engine is not running, already running
//     or has no binary, a port is taken, no host can take the job, the disk is full, the
//     model is in use. 400 would tell a client that its request is malformed and must not
//     be repeated, which is false: the same request succeeds once the state changes. The
//     LLM service's "not running" is UNAVAILABLE, 503, and the seed wrapper has always
//     answered 503 for a stopped engine; now the gateway says the same for the same seed
//     endpoint (it said 400).
//     One reason is the exception: UNSUPPORTED_IN_MODE (a preview asked of hosts whose
//     engine runs in sd-server mode) is 400 without Retry-After, because repeating the
//     request cannot help until an operator changes the engine's mode; the client must
//     change the request (drop the preview) instead.
//   - CANCELLED is 500, not 499. 499 means "the client closed the request", but a client
//     that still reads the answer did not cancel: the server (CancelGeneration, a job
//     cancelled by another client) did, and the request failed. The reason says so. A
//     service that is shutting down answers UNAVAILABLE (503), not CANCELLED.
//
// Errors that the HTTP edge makes itself have their own status: 404 for an unknown
// route (NOT_FOUND), 405 for a known route with another method (UNIMPLEMENTED), 413 for
// a body over the limit (INVALID_ARGUMENT, reason BODY_TOO_LARGE; detected from
// *http.MaxBytesError, never from a message), 400 for a URL that is not valid UTF-8
// (INVALID_ARGUMENT, reason INVALID_URL).
//
// # Retry-After
//
// A status with a RetryInfo (package grpcerr: queue full, engine busy) sends its delay,
// rounded up to whole seconds. A 429 or 503 without one sends DefaultRetryAfter.
//
// # Bodies
//
//   - REST (the gateway's API): {"error": "<message>", "code": "<gRPC code name>",
//     "reason": "<ErrorInfo reason>"}; "error" is the seed's field, code and reason let
//     a client branch without reading the message.
//   - Seed (the seed contract's own routes, POST /v1/images/generations and GET /health,
//     on the seed wrapper and the gateway): exactly {"error": "<message>"}, as the seed
//     documents it and as its clients compare it.
//   - OpenAI (the gateway's /openai/v1/): OpenAI's error object, {"error": {"message",
//     "type", "code", "param"}}; code is the reason in lower case.
//   - A stream (NDJSON) that fails after its first message ends with one line
//     StreamLine: {"error", "code", "reason"}, the REST body.
package httperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/genailab/genailab/pkg/grpcerr"
)

// DefaultRetryAfter is the Retry-After of a 429 or 503 whose status has no RetryInfo.
const DefaultRetryAfter = 2 * time.Second

// Reasons of the errors the HTTP edge makes itself.
const (
	ReasonNoRoute          = "NO_SUCH_ROUTE"
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
	ReasonBodyTooLarge     = "BODY_TOO_LARGE"
	ReasonInvalidURL       = "INVALID_URL"
	ReasonInvalidBody      = "INVALID_BODY"
)

// Error is one HTTP error answer.
type Error struct {
	Status     int        // HTTP status
	Code       codes.Code // gRPC code; its name is the body's "code"
	Reason     string     // stable reason (ErrorInfo)
	Message    string
	RetryAfter time.Duration // from RetryInfo; 0: DefaultRetryAfter for 429 and 503, none otherwise
}

func (e Error) Error() string { return e.Message }

// statuses is the table of the package doc: each gRPC code's HTTP status, with the OpenAI
// error type of that status. A code not listed (Canceled, Unknown, Internal, DataLoss) is 500.
var statuses = []struct {
	codes      []codes.Code
	status     int
	openAIType string
}{
	{[]codes.Code{codes.OK}, http.StatusOK, "invalid_request_error"},
	{[]codes.Code{codes.InvalidArgument, codes.OutOfRange}, http.StatusBadRequest, "invalid_request_error"},
	{[]codes.Code{codes.Unauthenticated}, http.StatusUnauthorized, "authentication_error"},
	{[]codes.Code{codes.PermissionDenied}, http.StatusForbidden, "permission_error"},
	{[]codes.Code{codes.NotFound}, http.StatusNotFound, "not_found_error"},
	{[]codes.Code{codes.AlreadyExists, codes.Aborted}, http.StatusConflict, "invalid_request_error"},
	{[]codes.Code{codes.ResourceExhausted}, http.StatusTooManyRequests, "rate_limit_error"},
	{[]codes.Code{codes.Unimplemented}, http.StatusNotImplemented, "server_error"},
	{[]codes.Code{codes.Unavailable, codes.FailedPrecondition}, http.StatusServiceUnavailable, "service_unavailable_error"},
	{[]codes.Code{codes.DeadlineExceeded}, http.StatusGatewayTimeout, "server_error"},
}

// HTTPStatus is the HTTP status of a gRPC code (the table of the package doc).
func HTTPStatus(c codes.Code) int {
	for _, row := range statuses {
		if slices.Contains(row.codes, c) {
			return row.status
		}
	}
	return http.StatusInternalServerError
}

// From is the answer to err: 413 for an *http.MaxBytesError in its chain, an Error in its
// chain as it is, otherwise the status grpcerr.Classify(err, rules...) gives it (a
// backend's gRPC status with its reason and retry delay, or a domain error by the
// service's rules).
func From(err error, rules ...grpcerr.Rule) Error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return TooLarge(tooBig.Limit)
	}
	var e Error
	if errors.As(err, &e) {
		return e
	}
	in := grpcerr.Classify(err, rules...)
	return FromInfo(in)
}

// FromInfo is the answer to a classified status.
func FromInfo(in grpcerr.Info) Error {
	e := Error{Status: HTTPStatus(in.Code), Code: in.Code, Reason: in.Reason, Message: in.Message, RetryAfter: in.RetryAfter}
	if in.Reason == grpcerr.ReasonUnsupportedInMode {
		// The one reason whose status is not its code's (the package doc).
		e.Status, e.RetryAfter = http.StatusBadRequest, 0
	}
	return e
}

// New is an error of code with its table status.
func New(c codes.Code, reason, msg string) Error {
	if reason == "" {
		reason = grpcerr.CodeName(c)
	}
	return Error{Status: HTTPStatus(c), Code: c, Reason: reason, Message: msg}
}

// Invalid is a 400 for bad input found at the edge (a malformed body, a bad field).
func Invalid(msg string) Error { return New(codes.InvalidArgument, "", msg) }

// InvalidBody is a 400 for a body that is not the expected JSON.
func InvalidBody(err error) Error {
	return New(codes.InvalidArgument, ReasonInvalidBody, "invalid JSON body: "+err.Error())
}

// ErrTrailingData: a request body holds data after its JSON value. A json.Decoder stops
// after the first value, so without EndOfBody `{"prompt":"x"}0` is read as `{"prompt":"x"}`.
var ErrTrailingData = errors.New("unexpected data after the JSON body: send one JSON object")

// EndOfBody checks that nothing but white space follows the value dec has just decoded:
// nil at the end of the body, ErrTrailingData before it, and an *http.MaxBytesError (413)
// as it is when the body goes past its limit while looking.
func EndOfBody(dec *json.Decoder) error {
	_, err := dec.Token()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &tooLarge):
		return err
	}
	return ErrTrailingData
}

// NotFound is the 404 of an unknown route.
func NotFound(r *http.Request) Error {
	return New(codes.NotFound, ReasonNoRoute, "no such endpoint: "+r.Method+" "+safe(r.URL.Path))
}

// MethodNotAllowed is the 405 of a known route asked with another method.
func MethodNotAllowed(r *http.Request) Error {
	e := New(codes.Unimplemented, ReasonMethodNotAllowed, "method "+r.Method+" not allowed on "+safe(r.URL.Path))
	e.Status = http.StatusMethodNotAllowed
	return e
}

// TooLarge is the 413 of a body over limit bytes (limit <= 0: not known).
func TooLarge(limit int64) Error {
	msg := "request body too large"
	if limit > 0 {
		msg = fmt.Sprintf("request body too large (limit %d bytes)", limit)
	}
	e := New(codes.InvalidArgument, ReasonBodyTooLarge, msg)
	e.Status = http.StatusRequestEntityTooLarge
	return e
}

// CheckURL refuses a request whose path or query is not valid UTF-8 or whose query
// does not parse (400): such text cannot become a protobuf string, and it would
// otherwise fail further in as an internal error.
func CheckURL(r *http.Request) error {
	if !utf8.ValidString(r.URL.Path) {
		return New(codes.InvalidArgument, ReasonInvalidURL, "the URL path is not valid UTF-8")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return New(codes.InvalidArgument, ReasonInvalidURL, "the URL query does not parse: "+safe(err.Error()))
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return New(codes.InvalidArgument, ReasonInvalidURL, "a query parameter name is not valid UTF-8")
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return New(codes.InvalidArgument, ReasonInvalidURL, fmt.Sprintf("query parameter %q is not valid UTF-8", k))
			}
		}
	}
	return nil
}

// safe makes text valid UTF-8 for a JSON body.
func safe(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// Style is the shape of an error body.
type Style int

const (
	// REST is {"error", "code", "reason"}.
	REST Style = iota
	// Seed is exactly {"error"}: the seed contract's routes.
	Seed
	// OpenAI is OpenAI's error object.
	OpenAI
)

// SetHeaders sets Content-Type and, for a retryable answer, Retry-After.
func (e Error) SetHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	if s := e.retryAfterSeconds(); s > 0 {
		h.Set("Retry-After", strconv.Itoa(s))
	}
}

func (e Error) retryAfterSeconds() int {
	d := e.RetryAfter
	if d <= 0 {
		if e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable {
			return 0
		}
		d = DefaultRetryAfter
	}
	return int((d + time.Second - 1) / time.Second)
}

// Write answers e in style.
func (e Error) Write(w http.ResponseWriter, style Style) {
	e.SetHeaders(w.Header())
	w.Header().Del("Content-Length")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(e.Body(style), '\n'))
}

// Body is e's JSON body in style.
func (e Error) Body(style Style) []byte {
	var v any
	switch style {
	case Seed:
		v = struct {
			Error string `json:"error"`
		}{e.Message}
	case OpenAI:
		type object struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    string  `json:"code"`
			Param   *string `json:"param"`
		}
		v = struct {
			Error object `json:"error"`
		}{object{Message: e.Message, Type: openAIType(e.Status), Code: strings.ToLower(e.reason())}}
	default:
		v = restBody{Error: e.Message, Code: grpcerr.CodeName(e.Code), Reason: e.reason()}
	}
	b, err := json.Marshal(v)
	if err != nil { // only strings: cannot happen
		return []byte(`{"error":"failed to encode the error"}`)
	}
	return b
}

type restBody struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// StreamLine is the last NDJSON line of a stream that failed after its first message
// (the REST body; no newline).
func (e Error) StreamLine() []byte { return e.Body(REST) }

func (e Error) reason() string {
	if e.Reason != "" {
		return e.Reason
	}
	return grpcerr.CodeName(e.Code)
}

// openAIType is OpenAI's error type for an HTTP status: the table's, else (a status the
// edge makes itself: 405, 413) invalid_request_error below 500 and server_error above.
func openAIType(status int) string {
	for _, row := range statuses {
		if row.status == status {
			return row.openAIType
		}
	}
	if status < 500 {
		return "invalid_request_error"
	}
	return "server_error"
}
