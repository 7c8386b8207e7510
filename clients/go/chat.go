package genailab

import (
	"context"
	"errors"
	"io"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// Messages builds a conversation from role/content pairs: Messages("user", "hi").
// An odd trailing element is ignored.
func Messages(roleContent ...string) []*llmv1.ChatMessage {
	var out []*llmv1.ChatMessage
	for i := 0; i+1 < len(roleContent); i += 2 {
		out = append(out, &llmv1.ChatMessage{Role: roleContent[i], Content: roleContent[i+1]})
	}
	return out
}

// Chat sends a conversation to the LLM service and calls onDelta with each piece of the
// reply as it is generated (the text may hold any Unicode, U+FFFD and control characters
// included: sanitise it before printing it to a terminal). It returns the closing
// statistics. A nil onDelta discards the text; an error from onDelta stops the stream
// and is returned.
func (c *Client) Chat(ctx context.Context, req *llmv1.ChatRequest, onDelta func(string) error) (*llmv1.ChatDone, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.LLM().Chat(sctx, req)
	if err != nil {
		return nil, err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("the LLM service ended the chat stream without its closing message")
			}
			return nil, err
		}
		switch e := msg.GetEvent().(type) {
		case *llmv1.ChatResponse_Delta:
			if onDelta != nil {
				if err := onDelta(e.Delta.GetContent()); err != nil {
					return nil, err
				}
			}
		case *llmv1.ChatResponse_Done:
			return e.Done, nil
		}
	}
}
