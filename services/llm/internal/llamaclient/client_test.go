package llamaclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseHealthFixtures(t *testing.T) {
	if h := ParseHealth(200, fixture(t, "health_ok.json")); h.State != HealthOK {
		t.Fatalf("ok fixture: %+v", h)
	}
	if h := ParseHealth(503, fixture(t, "health_loading.json")); h.State != HealthLoading || h.Message != "Loading model" {
		t.Fatalf("loading fixture: %+v", h)
	}
	for _, tc := range []struct {
		status int
		body   string
	}{
		{200, `{"status":"degraded"}`},
		{200, `not json`},
		{503, `{"error":{"message":"no slot available","type":"unavailable_error_x","code":503}}`},
		{500, `{"error":{"message":"boom","type":"server_error","code":500}}`},
		{404, "\xff\xfe<html>"},
	} {
		h := ParseHealth(tc.status, []byte(tc.body))
		if h.State != HealthError || h.StatusCode != tc.status || h.Message == "" {
			t.Errorf("%d %q: %+v", tc.status, tc.body, h)
		}
	}
}

func TestParseErrorFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		is   error
		typ  string
	}{
		{"error_context_exceeded.json", ErrContextExceeded, "exceed_context_size_error"},
		{"error_bad_json.json", ErrInvalidRequest, "invalid_request_error"},
		{"error_no_messages.json", ErrInvalidRequest, "invalid_request_error"},
		{"health_loading.json", ErrLoading, "unavailable_error"},
	} {
		status := 400
		if tc.is == ErrLoading {
			status = 503
		}
		e := ParseError(status, fixture(t, tc.file))
		if !errors.Is(e, tc.is) || e.Type != tc.typ || e.Message == "" || e.StatusCode != status {
			t.Errorf("%s: %+v (is %v: %v)", tc.file, e, tc.is, errors.Is(e, tc.is))
		}
		if !strings.Contains(e.Error(), e.Message) {
			t.Errorf("%s: Error() = %q", tc.file, e.Error())
		}
	}
	e := ParseError(502, []byte(strings.Repeat("x", 2000)))
	if len(e.Message) != maxErrorText || errors.Is(e, ErrLoading) {
		t.Fatalf("raw body: %d bytes", len(e.Message))
	}
}

func TestChatRequestValidationAndBody(t *testing.T) {
	for _, r := range []ChatRequest{
		{MaxTokens: 5},
		{Messages: []Message{{Role: "user", Content: "x"}}},
		{Messages: []Message{{Role: "user", Content: "x"}}, MaxTokens: -1},
		{Messages: []Message{{Content: "x"}}, MaxTokens: 5},
	} {
		if err := r.Validate(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: %v", r, err)
		}
	}
	temp := 0.5
	b, err := ChatRequest{Messages: []Message{{Role: "user", Content: "hi"}}, MaxTokens: 7, Temperature: &temp}.Body()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["stream"] != true || m["max_tokens"] != float64(7) || m["temperature"] != 0.5 ||
		m["stream_options"].(map[string]any)["include_usage"] != true {
		t.Fatalf("body %s", b)
	}
	if _, ok := m["seed"]; ok {
		t.Fatalf("unset option sent: %s", b)
	}
}

// replay serves a captured llama-server answer over real HTTP.
func replay(t *testing.T, status int, contentType string, body []byte) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var hello = ChatRequest{Messages: []Message{{Role: "user", Content: "Say hello"}}, MaxTokens: 16}

func TestChatStreamOverHTTP(t *testing.T) {
	c := replay(t, 200, "text/event-stream", fixture(t, "chat_stream_usage.sse"))
	s, err := c.ChatStream(context.Background(), hello)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if sum := summarize(evs); sum.usage == nil || sum.usage.CompletionTokens != 16 || sum.content == "" {
		t.Fatalf("%+v", sum)
	}
	s.Close() // idempotent after EOF
}

func TestChatStreamErrorAnswers(t *testing.T) {
	c := replay(t, 400, "application/json; charset=utf-8", fixture(t, "error_context_exceeded.json"))
	_, err := c.ChatStream(context.Background(), hello)
	var ae *APIError
	if !errors.Is(err, ErrContextExceeded) || !errors.As(err, &ae) || ae.StatusCode != 400 {
		t.Fatalf("err %v", err)
	}
	c = replay(t, 503, "application/json", fixture(t, "health_loading.json"))
	if _, err := c.ChatStream(context.Background(), hello); !errors.Is(err, ErrLoading) {
		t.Fatalf("loading: %v", err)
	}
	c = replay(t, 200, "application/json", fixture(t, "chat_nonstream.json"))
	if _, err := c.ChatStream(context.Background(), hello); err == nil || !strings.Contains(err.Error(), "Content-Type") {
		t.Fatalf("non-stream answer: %v", err)
	}
	if _, err := c.ChatStream(context.Background(), ChatRequest{Messages: hello.Messages}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("no max tokens: %v", err)
	}
}

func TestHealthStatesOverHTTP(t *testing.T) {
	ctx := context.Background()
	h, err := replay(t, 503, "application/json", fixture(t, "health_loading.json")).Health(ctx)
	if err != nil || h.State != HealthLoading {
		t.Fatalf("loading: %+v %v", h, err)
	}
	h, err = replay(t, 200, "application/json", fixture(t, "health_ok.json")).Health(ctx)
	if err != nil || h.State != HealthOK {
		t.Fatalf("ok: %+v %v", h, err)
	}
	// Nothing listening: a port that was just free.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := New("http://"+addr, nil)
	h, err = c.Health(ctx)
	if err != nil || h.State != HealthUnreachable || !h.Refused || h.Err == nil {
		t.Fatalf("refused: %+v %v", h, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Health(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestChatStreamCancelClosesConnection(t *testing.T) {
	// A server that sends one chunk and then holds the stream open until the client goes away.
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the request as llama-server does: for a request that says
		// Connection: close (streamed ones do), net/http only notices the client
		// going away once the body is read.
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"delta":{"content":"a"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.ChatStream(ctx, hello)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Recv(); err != nil || ev.Content != "a" {
		t.Fatalf("%+v %v", ev, err)
	}
	errc := make(chan error, 1)
	go func() { _, err := s.Recv(); errc <- err }()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Recv after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Recv did not return after cancel")
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not see the client go away")
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "://"} {
		if _, err := New(u, nil); err == nil {
			t.Errorf("New(%q): want error", u)
		}
	}
	c, err := New("http://127.0.0.1:8080/", nil)
	if err != nil || c.BaseURL() != "http://127.0.0.1:8080" {
		t.Fatalf("%v %v", c, err)
	}
}
