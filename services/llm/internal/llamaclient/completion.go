package llamaclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Completion is a whole (non-streamed) chat completion.
type Completion struct {
	ID    string
	Model string
	// Content is the generated text (valid UTF-8; may contain U+FFFD and control characters).
	Content      string
	FinishReason string
	Usage        *Usage
	Timings      *Timings
}

// completionJSON is the JSON of a non-streamed answer.
type completionJSON struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage   *Usage   `json:"usage"`
	Timings *Timings `json:"timings"`
}

// maxCompletionSize bounds a non-streamed answer.
const maxCompletionSize = 16 << 20

// Chat runs a chat completion without streaming: llama-server answers once, with the whole
// text, which costs it less than a stream and keeps the connection open for the next
// request. Cancelling ctx closes the connection, which makes llama-server cancel the task.
// A non-200 answer is returned as an *APIError (see the sentinels).
func (c *Client) Chat(ctx context.Context, r ChatRequest) (Completion, error) {
	if err := r.Validate(); err != nil {
		return Completion{}, err
	}
	body, err := r.body(false)
	if err != nil {
		return Completion{}, fmt.Errorf("chat: encode request: %w", err)
	}
	resp, err := c.post(ctx, body, "application/json")
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return Completion{}, ctx.Err()
		}
		return Completion{}, fmt.Errorf("chat: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCompletionSize+1))
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return Completion{}, context.Cause(ctx)
		}
		return Completion{}, fmt.Errorf("chat: read answer: %w: %w", ErrIncompleteStream, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Completion{}, fmt.Errorf("chat: %w", ParseError(resp.StatusCode, b))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return Completion{}, fmt.Errorf("chat: expected JSON, got Content-Type %q", ct)
	}
	if len(b) > maxCompletionSize {
		return Completion{}, fmt.Errorf("chat: answer larger than %d bytes", maxCompletionSize)
	}
	return ParseCompletion(b)
}

// ParseCompletion decodes a non-streamed answer. It is pure; invalid UTF-8 in the text
// becomes U+FFFD (as encoding/json does).
func ParseCompletion(b []byte) (Completion, error) {
	var cj completionJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		return Completion{}, fmt.Errorf("decode completion %q: %w", cleanText(b, 200), err)
	}
	if len(cj.Choices) == 0 {
		return Completion{}, fmt.Errorf("decode completion %q: no choices", cleanText(b, 200))
	}
	out := Completion{ID: cj.ID, Model: cj.Model, Usage: cj.Usage, Timings: cj.Timings}
	ch := cj.Choices[0]
	if ch.Message.Content != nil {
		out.Content = *ch.Message.Content
	}
	if ch.FinishReason != nil {
		out.FinishReason = *ch.FinishReason
	}
	return out, nil
}
