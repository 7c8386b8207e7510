package httperr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/httperr"
)

func TestHTTPStatusTable(t *testing.T) {
	want := map[codes.Code]int{
		codes.OK: 200, codes.Canceled: 500, codes.Unknown: 500, codes.InvalidArgument: 400,
		codes.DeadlineExceeded: 504, codes.NotFound: 404, codes.AlreadyExists: 409,
		codes.PermissionDenied: 403, codes.ResourceExhausted: 429, codes.FailedPrecondition: 503,
		codes.Aborted: 409, codes.OutOfRange: 400, codes.Unimplemented: 501, codes.Internal: 500,
		codes.Unavailable: 503, codes.DataLoss: 500, codes.Unauthenticated: 401,
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if got := httperr.HTTPStatus(c); got != want[c] {
			t.Errorf("%v: %d, want %d", c, got, want[c])
		}
	}
}

// The OpenAI error type follows the HTTP status, including the statuses the edge makes
// itself (405, 413), which no gRPC code maps to.
func TestOpenAIErrorTypes(t *testing.T) {
	req := httptest.NewRequest(http.MethodPut, "/x", nil)
	cases := []struct {
		e    httperr.Error
		want string
	}{
		{httperr.New(codes.OK, "", "ok"), "invalid_request_error"},
		{httperr.New(codes.InvalidArgument, "", "bad"), "invalid_request_error"},
		{httperr.New(codes.OutOfRange, "", "bad"), "invalid_request_error"},
		{httperr.New(codes.Unauthenticated, "", "who"), "authentication_error"},
		{httperr.New(codes.PermissionDenied, "", "no"), "permission_error"},
		{httperr.New(codes.NotFound, "", "none"), "not_found_error"},
		{httperr.New(codes.AlreadyExists, "", "dup"), "invalid_request_error"},
		{httperr.New(codes.Aborted, "", "dup"), "invalid_request_error"},
		{httperr.New(codes.ResourceExhausted, "", "full"), "rate_limit_error"},
		{httperr.New(codes.Canceled, "", "x"), "server_error"},
		{httperr.New(codes.Unknown, "", "x"), "server_error"},
		{httperr.New(codes.Internal, "", "x"), "server_error"},
		{httperr.New(codes.DataLoss, "", "x"), "server_error"},
		{httperr.New(codes.Unimplemented, "", "x"), "server_error"},
		{httperr.New(codes.Unavailable, "", "x"), "service_unavailable_error"},
		{httperr.New(codes.FailedPrecondition, "", "x"), "service_unavailable_error"},
		{httperr.New(codes.DeadlineExceeded, "", "x"), "server_error"},
		{httperr.MethodNotAllowed(req), "invalid_request_error"},
		{httperr.TooLarge(10), "invalid_request_error"},
	}
	for _, c := range cases {
		_, out := answer(c.e, httperr.OpenAI)
		o, _ := out["error"].(map[string]any)
		if o["type"] != c.want {
			t.Errorf("%d %v: type %v, want %s", c.e.Status, c.e.Code, o["type"], c.want)
		}
	}
}

func answer(e httperr.Error, style httperr.Style) (*httptest.ResponseRecorder, map[string]any) {
	w := httptest.NewRecorder()
	e.Write(w, style)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w, out
}

func TestRetryAfterComesFromRetryInfo(t *testing.T) {
	busy := grpcerr.New(grpcerr.Info{Code: codes.Unavailable, Reason: grpcerr.ReasonEngineBusy, Message: "Server is busy generating another image", RetryAfter: 7 * time.Second})
	cases := []struct {
		err  error
		want string
	}{
		{busy, "7"},
		{grpcerr.New(grpcerr.Info{Code: codes.ResourceExhausted, Reason: grpcerr.ReasonQueueFull, Message: "full", RetryAfter: 1200 * time.Millisecond}), "2"}, // rounded up
		{status.Error(codes.ResourceExhausted, "full"), "2"}, // no RetryInfo: the default
		{status.Error(codes.InvalidArgument, "bad"), ""},
		{errors.New("boom"), ""},
	}
	for _, c := range cases {
		w, _ := answer(httperr.From(c.err), httperr.REST)
		if got := w.Header().Get("Retry-After"); got != c.want {
			t.Errorf("%v: Retry-After %q, want %q", c.err, got, c.want)
		}
	}
}

func TestBodies(t *testing.T) {
	e := httperr.From(fmt.Errorf("generate: %w", grpcerr.New(grpcerr.Info{Code: codes.ResourceExhausted, Reason: grpcerr.ReasonQueueFull, Message: "the image queue is full"})))
	w, out := answer(e, httperr.REST)
	if w.Code != 429 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if len(out) != 3 || out["error"] != "generate: the image queue is full" || out["code"] != "RESOURCE_EXHAUSTED" || out["reason"] != "QUEUE_FULL" {
		t.Errorf("REST body %v", out)
	}
	if _, out := answer(e, httperr.Seed); len(out) != 1 || out["error"] != "generate: the image queue is full" {
		t.Errorf("seed body %v", out)
	}
	_, out = answer(e, httperr.OpenAI)
	o, _ := out["error"].(map[string]any)
	if len(out) != 1 || o["message"] != "generate: the image queue is full" || o["type"] != "rate_limit_error" || o["code"] != "queue_full" {
		t.Errorf("OpenAI body %v", out)
	}
	if _, ok := o["param"]; !ok {
		t.Errorf("OpenAI body without param: %v", out)
	}
	if line := string(e.StreamLine()); line != `{"error":"generate: the image queue is full","code":"RESOURCE_EXHAUSTED","reason":"QUEUE_FULL"}` {
		t.Errorf("stream line %s", line)
	}
}

// 413 is told by the error's type, whatever its text; the text alone is no 413.
func TestBodyTooLargeIsDetectedFromTheErrorType(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10))
		httperr.From(fmt.Errorf("decode: %w", err)).Write(w, httperr.REST)
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 413 || out["reason"] != httperr.ReasonBodyTooLarge {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	if e := httperr.From(errors.New("http: request body too large")); e.Status != 500 {
		t.Fatalf("a message alone made %d", e.Status)
	}
}

func TestCheckURLRefusesInvalidUTF8(t *testing.T) {
	for _, target := range []string{"/v1/models?type=%ff", "/v1/models/%c3%28", "/v1/x?%ff=1", "/v1/x?a=%zz"} {
		r := httptest.NewRequest("GET", target, nil)
		err := httperr.CheckURL(r)
		if e := httperr.From(err); err == nil || e.Status != 400 || e.Reason != httperr.ReasonInvalidURL {
			t.Errorf("%s: %v", target, err)
		}
	}
	if err := httperr.CheckURL(httptest.NewRequest("GET", "/v1/models?type=caf%C3%A9", nil)); err != nil {
		t.Errorf("valid UTF-8 refused: %v", err)
	}
}

func TestEdgeErrors(t *testing.T) {
	r := httptest.NewRequest("DELETE", "/v1/nope", nil)
	if e := httperr.NotFound(r); e.Status != 404 || e.Reason != httperr.ReasonNoRoute || !strings.Contains(e.Message, "DELETE /v1/nope") {
		t.Errorf("%+v", e)
	}
	if e := httperr.MethodNotAllowed(r); e.Status != 405 || e.Reason != httperr.ReasonMethodNotAllowed {
		t.Errorf("%+v", e)
	}
	if e := httperr.TooLarge(1 << 20); e.Status != 413 || !strings.Contains(e.Message, "1048576") {
		t.Errorf("%+v", e)
	}
}

// Issue 14's fault suite: data after a body's JSON value was ignored at every JSON edge.
func TestEndOfBody(t *testing.T) {
	for body, want := range map[string]error{
		`{"a":1}`:        nil,
		"{\"a\":1} \n\t": nil,
		`{"a":1}0`:       httperr.ErrTrailingData,
		`{"a":1} {}`:     httperr.ErrTrailingData,
		`{"a":1}}`:       httperr.ErrTrailingData,
		`{"a":1}"x"`:     httperr.ErrTrailingData,
	} {
		dec := json.NewDecoder(strings.NewReader(body))
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if err := httperr.EndOfBody(dec); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", body, err, want)
		}
	}
	rec := httptest.NewRecorder()
	dec := json.NewDecoder(http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(`{"a":1}`+strings.Repeat(" ", 64)+"x")), 20))
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var tooLarge *http.MaxBytesError
	if err := httperr.EndOfBody(dec); !errors.As(err, &tooLarge) || httperr.From(err).Status != http.StatusRequestEntityTooLarge {
		t.Errorf("past the limit: %v", err)
	}
}

func TestUnsupportedInModeIsABadRequestWithoutRetryAfter(t *testing.T) {
	err := grpcerr.New(grpcerr.Info{Code: codes.FailedPrecondition, Reason: grpcerr.ReasonUnsupportedInMode,
		Message: "proj previews are not available in server mode", RetryAfter: time.Second})
	for _, form := range []httperr.Style{httperr.REST, httperr.OpenAI} {
		w, _ := answer(httperr.From(err), form)
		if w.Code != http.StatusBadRequest || w.Header().Get("Retry-After") != "" {
			t.Errorf("form %v: %d, Retry-After %q; want 400 without Retry-After", form, w.Code, w.Header().Get("Retry-After"))
		}
	}
	// Another FailedPrecondition stays 503 with Retry-After.
	w, _ := answer(httperr.From(status.Error(codes.FailedPrecondition, "engine not running")), httperr.REST)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("FailedPrecondition: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}
