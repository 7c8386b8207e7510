package llamaclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a chat completion request. MaxTokens is required: a random or runaway model would
// otherwise generate until the context is full.
type ChatRequest struct {
	Messages    []Message
	MaxTokens   int
	Temperature *float64
	TopP        *float64
	TopK        *int
	Seed        *int64
	Stop        []string
}

// wireRequest is the JSON sent to /v1/chat/completions.
type wireRequest struct {
	Messages  []Message `json:"messages"`
	MaxTokens int       `json:"max_tokens"`
	Stream    bool      `json:"stream"`
	// StreamOptions is sent with streamed requests only.
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	TopP          *float64       `json:"top_p,omitempty"`
	TopK          *int           `json:"top_k,omitempty"`
	Seed          *int64         `json:"seed,omitempty"`
	Stop          []string       `json:"stop,omitempty"`
}

// Validate checks what the client can know without the server.
func (r ChatRequest) Validate() error {
	switch {
	case len(r.Messages) == 0:
		return fmt.Errorf("%w: no messages", ErrInvalidRequest)
	case r.MaxTokens <= 0:
		return fmt.Errorf("%w: max tokens must be positive, got %d", ErrInvalidRequest, r.MaxTokens)
	}
	for i, m := range r.Messages {
		if m.Role == "" {
			return fmt.Errorf("%w: message %d has no role", ErrInvalidRequest, i)
		}
	}
	return nil
}

// Body returns the JSON body ChatStream sends (stream with usage).
func (r ChatRequest) Body() ([]byte, error) { return r.body(true) }

// body is the JSON body of a streamed or a non-streamed completion.
func (r ChatRequest) body(stream bool) ([]byte, error) {
	w := wireRequest{
		Messages: r.Messages, MaxTokens: r.MaxTokens, Stream: stream,
		Temperature: r.Temperature, TopP: r.TopP, TopK: r.TopK, Seed: r.Seed, Stop: r.Stop,
	}
	if stream {
		w.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return json.Marshal(w)
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// post sends a completion request with the body and the Accept header given.
func (c *Client) post(ctx context.Context, body []byte, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/v1/chat/completions"), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	c.authorize(req)
	// llama-server closes idle keep-alive connections; a request written on one it has
	// just closed fails with EOF before any response byte. Marking the request idempotent
	// (an empty Idempotency-Key is not sent) lets net/http retry it on a fresh connection
	// in exactly that case; nothing was generated for it, so the retry loses nothing.
	// The transport of NewHTTPClient gives idle connections up before llama-server does,
	// so this is the exception, not the rule.
	req.Header["Idempotency-Key"] = nil
	if accept == "text/event-stream" {
		// llama-server closes the connection after every streamed reply (b11669: the next
		// request written on it reads EOF). Saying so up front keeps the connection out of
		// the idle pool, where the next request would race llama-server's close.
		req.Close = true
	}
	return c.hc.Do(req)
}

// Stream is an open streaming completion. Recv returns the chunks; Close (or cancelling the context given
// to ChatStream) closes the connection, which makes llama-server cancel the task and free the slot.
type Stream struct {
	body   io.ReadCloser
	dec    *Decoder
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// ChatStream starts a streaming chat completion. A non-200 answer is returned as an *APIError (see the
// sentinels ErrLoading, ErrContextExceeded, ErrInvalidRequest).
func (c *Client) ChatStream(ctx context.Context, r ChatRequest) (*Stream, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	body, err := r.Body()
	if err != nil {
		return nil, fmt.Errorf("chat: encode request: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.post(ctx, body, "text/event-stream")
	if err != nil {
		cancel()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("chat: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("chat: %w", ParseError(resp.StatusCode, b))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		cancel()
		resp.Body.Close()
		return nil, fmt.Errorf("chat: expected an event stream, got Content-Type %q", ct)
	}
	return &Stream{body: resp.Body, dec: NewDecoder(resp.Body), ctx: ctx, cancel: cancel}, nil
}

// Recv returns the next chunk; io.EOF after the server's [DONE]. When the context ends it returns the
// context's error. The stream is closed automatically on any error, io.EOF included.
func (s *Stream) Recv() (Event, error) {
	ev, err := s.dec.Next()
	if err == nil {
		return ev, nil
	}
	if cerr := s.ctx.Err(); cerr != nil && !errors.Is(err, io.EOF) {
		err = context.Cause(s.ctx)
	}
	if errors.Is(err, io.EOF) {
		s.finish()
	}
	s.Close()
	return Event{}, err
}

// maxTrailer bounds what finish reads after "[DONE]" to reach the end of the body.
const maxTrailer = 4 << 10

// finish reads the body to its end after "[DONE]" (the chunked encoding's last chunk
// follows it) before closing it, so the connection ends with llama-server's own close
// rather than with a close of ours while it still writes.
func (s *Stream) finish() {
	s.once.Do(func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(s.body, maxTrailer))
		s.body.Close()
		s.cancel()
	})
}

// Close closes the connection (idempotent).
func (s *Stream) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.body.Close()
	})
	return nil
}
