package llamaclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Sentinel errors; an *APIError matches the one its status and type mean (errors.Is).
var (
	// ErrLoading: 503 {"error":{"message":"Loading model","type":"unavailable_error"}}.
	ErrLoading = errors.New("llama-server is loading the model")
	// ErrContextExceeded: 400 with type exceed_context_size_error (prompt longer than the context).
	ErrContextExceeded = errors.New("request exceeds the context size")
	// ErrInvalidRequest: a request the client refuses to send, or a 400 invalid_request_error.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrIncompleteStream: the stream ended without "data: [DONE]".
	ErrIncompleteStream = errors.New("stream ended before [DONE]")
)

// APIError is an error answer of llama-server: an HTTP error status with its JSON body
// {"error":{"code":400,"message":"...","type":"..."}}, or an error event inside a stream (StatusCode 0).
type APIError struct {
	StatusCode int    // HTTP status; 0 for an error event in a stream
	Code       int    // error.code from the body
	Type       string // error.type, e.g. "invalid_request_error", "exceed_context_size_error"
	Message    string // error.message, or the raw body when it is not the JSON error shape
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("llama-server")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " HTTP %d", e.StatusCode)
	}
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Is matches the sentinel errors.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrLoading:
		return e.StatusCode == 503 && (e.Type == "unavailable_error" || e.Message == "Loading model")
	case ErrContextExceeded:
		return e.Type == "exceed_context_size_error"
	case ErrInvalidRequest:
		return e.Type == "invalid_request_error"
	}
	return false
}

// errorBody is the JSON shape of llama-server errors.
type errorBody struct {
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

// maxErrorText bounds the raw body kept in an APIError.
const maxErrorText = 512

// ParseError turns an error answer (status and body) into an *APIError. It is pure; a body that is not
// the JSON error shape is kept (truncated, as valid UTF-8) as the message.
func ParseError(status int, body []byte) *APIError {
	e := &APIError{StatusCode: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		e.Code, e.Message, e.Type = eb.Error.Code, eb.Error.Message, eb.Error.Type
		return e
	}
	e.Message = cleanText(body, maxErrorText)
	return e
}

// cleanText returns at most n bytes of b as trimmed, valid UTF-8.
func cleanText(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), string(utf8.RuneError)))
}
