package openai

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/httperr"
)

// chatRequest is OpenAI's chat completion request (the fields llama-server honours).
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           int32         `json:"max_tokens"`
	MaxCompletionTokens int32         `json:"max_completion_tokens"`
	Temperature         *float32      `json:"temperature"`
	TopP                *float32      `json:"top_p"`
	Stop                stopList      `json:"stop"`
	Seed                *int64        `json:"seed"`
	Stream              bool          `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// chatMessage accepts content as a string or as an array of parts ({"type":"text","text":...}).
type chatMessage struct {
	Role    string      `json:"role"`
	Content chatContent `json:"content"`
}

type chatContent string

func (c *chatContent) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*c = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = chatContent(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("content must be a string or an array of text parts")
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("content part of type %q is not supported: only text", p.Type)
		}
		sb.WriteString(p.Text)
	}
	*c = chatContent(sb.String())
	return nil
}

// stopList accepts a string or an array of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

type chatChoiceMessage struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type usage struct {
	PromptTokens     int32 `json:"prompt_tokens"`
	CompletionTokens int32 `json:"completion_tokens"`
	TotalTokens      int32 `json:"total_tokens"`
}

type chatChoice struct {
	Index        int                `json:"index"`
	Message      *chatChoiceMessage `json:"message,omitempty"`
	Delta        *chatChoiceMessage `json:"delta,omitempty"`
	FinishReason *string            `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

func completionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// chat relays a chat completion to the LLM service's Chat stream.
func (h *Handler) chat(w http.ResponseWriter, r *http.Request) {
	if h.llm == nil {
		writeError(w, unavailable("no LLM service configured behind this gateway"))
		return
	}
	var req chatRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, httperr.Invalid("messages must hold at least one message"))
		return
	}
	// A client that waits for the whole answer gets it from a non-streamed completion
	// upstream (cheaper for llama-server, one gRPC message instead of one per token).
	cr := &llmv1.ChatRequest{MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, Stop: req.Stop, Seed: req.Seed, WholeReply: !req.Stream}
	if req.MaxCompletionTokens > 0 {
		cr.MaxTokens = req.MaxCompletionTokens
	}
	for _, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		case "developer":
			m.Role = "system"
		default:
			writeError(w, httperr.Invalid(fmt.Sprintf("message role %q is not supported: use system, user or assistant", m.Role)))
			return
		}
		cr.Messages = append(cr.Messages, &llmv1.ChatMessage{Role: m.Role, Content: string(m.Content)})
	}
	model := req.Model
	if model == "" {
		model = h.modelID(r)
	}
	stream, err := h.llm.Chat(r.Context(), cr)
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	id, created := completionID(), time.Now().Unix()
	if !req.Stream {
		var text strings.Builder
		for {
			msg, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("the LLM service ended the reply without a finish")
				}
				writeGRPCError(w, err)
				return
			}
			if d := msg.GetDelta(); d != nil {
				text.WriteString(d.GetContent())
			}
			if done := msg.GetDone(); done != nil {
				reason := finishReason(done)
				writeJSON(w, chatResponse{
					ID: id, Object: "chat.completion", Created: created, Model: model,
					Choices: []chatChoice{{Message: &chatChoiceMessage{Role: "assistant", Content: text.String()}, FinishReason: &reason}},
					Usage:   usageOf(done),
				})
				return
			}
		}
	}
	h.streamChat(w, stream, id, created, model, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
}

// streamChat relays the reply as OpenAI's server-sent events: a first chunk with the role,
// one chunk per delta, a last chunk with the finish reason (and usage when asked for), then
// "data: [DONE]". An error before the first message is answered with its status; one after
// it ends the stream with an event holding OpenAI's error object.
func (h *Handler) streamChat(w http.ResponseWriter, stream llmv1.LLMService_ChatClient, id string, created int64, model string, includeUsage bool) {
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the LLM service ended the reply without a finish")
		}
		writeGRPCError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	chunk := func(delta *chatChoiceMessage, reason *string) chatResponse {
		return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			Choices: []chatChoice{{Delta: delta, FinishReason: reason}}}
	}
	if !send(chunk(&chatChoiceMessage{Role: "assistant"}, nil)) {
		return
	}
	deltas := newDeltaWriter(id, created, model)
	msg := first
	for {
		if d := msg.GetDelta(); d != nil && d.GetContent() != "" {
			if _, err := w.Write(deltas.event(d.GetContent())); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if done := msg.GetDone(); done != nil {
			reason := finishReason(done)
			last := chunk(&chatChoiceMessage{}, &reason)
			if !send(last) {
				return
			}
			if includeUsage {
				send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, Choices: []chatChoice{}, Usage: usageOf(done)})
			}
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			if flusher != nil {
				flusher.Flush()
			}
			return
		}
		if wt := msg.GetWaiting(); wt != nil {
			msg, err = recvKeepingAlive(w, flusher, stream, wt)
		} else {
			msg, err = stream.Recv()
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the LLM service ended the reply without a finish")
			}
			_, _ = fmt.Fprintf(w, "data: %s\n\n", httperr.From(err).Body(httperr.OpenAI))
			if flusher != nil {
				flusher.Flush()
			}
			return
		}
	}
}

func finishReason(d *llmv1.ChatDone) string {
	if r := d.GetFinishReason(); r != "" {
		return r
	}
	return "stop"
}

func usageOf(d *llmv1.ChatDone) *usage {
	return &usage{PromptTokens: d.GetPromptTokens(), CompletionTokens: d.GetCompletionTokens(), TotalTokens: d.GetPromptTokens() + d.GetCompletionTokens()}
}

// deltaWriter encodes the content chunks of one streamed reply: the bytes around the
// text are the same in every chunk, so they are encoded once and each token costs one
// JSON string encoding, the same bytes json.Marshal of the chunk gives.
type deltaWriter struct {
	prefix, suffix []byte
	buf            []byte
}

func newDeltaWriter(id string, created int64, model string) *deltaWriter {
	const mark = "\x00"
	b, _ := json.Marshal(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
		Choices: []chatChoice{{Delta: &chatChoiceMessage{Content: mark}}}})
	enc, _ := json.Marshal(mark)
	i := bytes.LastIndex(b, enc) // after the id and the model, which may hold the same bytes
	return &deltaWriter{prefix: append([]byte("data: "), b[:i]...), suffix: append(b[i+len(enc):len(b):len(b)], "\n\n"...)}
}

// event returns the SSE event of one delta (valid until the next call).
func (d *deltaWriter) event(content string) []byte {
	enc, _ := json.Marshal(content)
	d.buf = append(append(append(d.buf[:0], d.prefix...), enc...), d.suffix...)
	return d.buf
}
