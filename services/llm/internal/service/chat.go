package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/services/llm/internal/llamaclient"
)

// Limits of a chat request.
const maxStopSequences = 16

// Chat implements LLMService: it waits (bounded) for the server when it is
// offloaded or starting, sends the conversation to llama-server's
// /v1/chat/completions with streaming, relays every token delta, and ends
// with the statistics. With whole_reply it asks for a non-streamed
// completion instead and sends its text as one delta. A client that goes away cancels the request at
// llama-server (the HTTP connection is closed, which frees the slot).
//
// Times: waited_ms is the wait for the server; time_to_first_token_ms is
// from sending the request to llama-server to the first token; total_ms is
// the whole call, the wait included.
func (s *Service) Chat(req *llmv1.ChatRequest, stream grpc.ServerStreamingServer[llmv1.ChatResponse]) (err error) {
	received := time.Now()
	var done *llmv1.ChatDone
	var waited time.Duration
	defer func() { s.metrics.chatEnded(s.modelID(), waited, time.Since(received), done, err) }()
	creq, err := s.chatRequest(req)
	if err != nil {
		return toStatus(err)
	}
	a, err := s.admitNotifying(stream.Context(), s.chatWait(req), sendWaiting(stream))
	if err != nil {
		return toStatus(err)
	}
	defer a.release()
	if req.GetWholeReply() {
		done, err = s.relayWhole(a, creq, stream)
	} else {
		done, err = s.relay(a, creq, stream)
	}
	if err != nil {
		return toStatus(err)
	}
	waited = a.waited
	done.WaitedMs = a.waited.Milliseconds()
	done.TotalMs = time.Since(received).Milliseconds()
	return stream.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Done{Done: done}})
}

// llama is the client of the admitted server.
func (s *Service) llama(a *admission) (*llamaclient.Client, error) {
	client, err := llamaclient.New(a.baseURL, s.hc)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return client.WithAPIKey(s.apiKey), nil
}

// relayWhole asks llama-server for a non-streamed completion and sends its
// text as one delta (ChatRequest.whole_reply). time_to_first_token_ms is
// then llama-server's own prompt time, the only first-token time there is.
func (s *Service) relayWhole(a *admission, creq llamaclient.ChatRequest, stream grpc.ServerStreamingServer[llmv1.ChatResponse]) (*llmv1.ChatDone, error) {
	client, err := s.llama(a)
	if err != nil {
		return nil, err
	}
	c, err := client.Chat(a.ctx, creq)
	if err != nil {
		return nil, chatError(a.ctx, err)
	}
	if c.Content != "" {
		if err := stream.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: validText(c.Content)}}}); err != nil {
			return nil, err
		}
	}
	done := &llmv1.ChatDone{FinishReason: c.FinishReason}
	if c.Usage != nil {
		done.PromptTokens, done.CompletionTokens = int32(c.Usage.PromptTokens), int32(c.Usage.CompletionTokens)
	}
	if t := c.Timings; t != nil {
		done.TimeToFirstTokenMs = int64(math.Round(t.PromptMS))
		done.TokensPerSecond = t.PredictedPerSecond
		if c.Usage == nil {
			done.PromptTokens, done.CompletionTokens = int32(t.PromptN+t.CacheN), int32(t.PredictedN)
		}
	}
	return done, nil
}

// validText guards the protobuf string rule: llamaclient already returns
// valid UTF-8, so this stays a guard, not a transformation.
func validText(text string) string {
	if !utf8.ValidString(text) {
		return strings.ToValidUTF8(text, string(utf8.RuneError))
	}
	return text
}

// relay streams one completion from llama-server to the client.
func (s *Service) relay(a *admission, creq llamaclient.ChatRequest, stream grpc.ServerStreamingServer[llmv1.ChatResponse]) (*llmv1.ChatDone, error) {
	client, err := s.llama(a)
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	st, err := client.ChatStream(a.ctx, creq)
	if err != nil {
		return nil, chatError(a.ctx, err)
	}
	defer st.Close()
	var (
		done       = &llmv1.ChatDone{TimeToFirstTokenMs: -1}
		firstAt    time.Time
		deltas     int
		usage      *llamaclient.Usage
		timings    *llamaclient.Timings
		finishedAt time.Time
	)
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, chatError(a.ctx, err)
		}
		if ev.Content != "" {
			if firstAt.IsZero() {
				firstAt = time.Now()
				done.TimeToFirstTokenMs = firstAt.Sub(sent).Milliseconds()
			}
			deltas++
			if err := stream.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: validText(ev.Content)}}}); err != nil {
				return nil, err
			}
		}
		if ev.FinishReason != "" {
			done.FinishReason = ev.FinishReason
			finishedAt = time.Now()
		}
		if ev.Usage != nil {
			usage = ev.Usage
		}
		if ev.Timings != nil {
			timings = ev.Timings
		}
	}
	if finishedAt.IsZero() {
		finishedAt = time.Now()
	}
	done.CompletionTokens = int32(deltas)
	if usage != nil {
		done.PromptTokens, done.CompletionTokens = int32(usage.PromptTokens), int32(usage.CompletionTokens)
	}
	switch {
	case timings != nil && timings.PredictedPerSecond > 0:
		done.TokensPerSecond = timings.PredictedPerSecond
	case !firstAt.IsZero() && done.CompletionTokens > 1 && finishedAt.After(firstAt):
		done.TokensPerSecond = float64(done.CompletionTokens-1) / finishedAt.Sub(firstAt).Seconds()
	}
	if done.TimeToFirstTokenMs < 0 {
		done.TimeToFirstTokenMs = 0
	}
	return done, nil
}

// chatError classifies an error of a chat with llama-server.
func chatError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		// Interrupted by a stop (ErrInterrupted), or the client went away.
		return cause
	}
	var api *llamaclient.APIError
	switch {
	case errors.Is(err, llamaclient.ErrContextExceeded), errors.Is(err, llamaclient.ErrInvalidRequest):
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	case errors.Is(err, llamaclient.ErrLoading):
		return fmt.Errorf("%w: %w", ErrInterrupted, err)
	case errors.As(err, &api):
		return fmt.Errorf("chat: %w", err)
	}
	// Transport errors and streams cut short: the server went away.
	return fmt.Errorf("%w: %w", ErrInterrupted, err)
}

// chatRequest validates a ChatRequest and converts it. A limit on the
// tokens generated is always set.
func (s *Service) chatRequest(req *llmv1.ChatRequest) (llamaclient.ChatRequest, error) {
	var out llamaclient.ChatRequest
	msgs := req.GetMessages()
	switch {
	case len(msgs) == 0:
		return out, fmt.Errorf("%w: messages: at least one is required", ErrInvalidRequest)
	case len(msgs) > maxChatMessages:
		return out, fmt.Errorf("%w: messages: %d (at most %d)", ErrInvalidRequest, len(msgs), maxChatMessages)
	case req.GetMaxTokens() < 0 || req.GetMaxTokens() > maxTokensLimit:
		return out, fmt.Errorf("%w: max_tokens %d out of range 0-%d", ErrInvalidRequest, req.GetMaxTokens(), maxTokensLimit)
	case req.GetWaitTimeoutMs() < 0:
		return out, fmt.Errorf("%w: wait_timeout_ms must not be negative", ErrInvalidRequest)
	case len(req.GetStop()) > maxStopSequences:
		return out, fmt.Errorf("%w: stop: %d sequences (at most %d)", ErrInvalidRequest, len(req.GetStop()), maxStopSequences)
	}
	size := 0
	for i, m := range msgs {
		switch m.GetRole() {
		case "system", "user", "assistant":
		default:
			return out, fmt.Errorf("%w: messages[%d].role %q (want system, user or assistant)", ErrInvalidRequest, i, m.GetRole())
		}
		size += len(m.GetContent())
		out.Messages = append(out.Messages, llamaclient.Message{Role: m.GetRole(), Content: m.GetContent()})
	}
	if size > maxChatBytes {
		return out, fmt.Errorf("%w: messages: %d bytes of content (at most %d)", ErrInvalidRequest, size, maxChatBytes)
	}
	out.MaxTokens = int(req.GetMaxTokens())
	if out.MaxTokens == 0 {
		out.MaxTokens = s.opts.DefaultMaxTokens
	}
	if req.Temperature != nil {
		t := float64(req.GetTemperature())
		if math.IsNaN(t) || t < 0 || t > 100 {
			return out, fmt.Errorf("%w: temperature %v (want 0 to 100)", ErrInvalidRequest, t)
		}
		out.Temperature = &t
	}
	if req.TopP != nil {
		p := float64(req.GetTopP())
		if math.IsNaN(p) || p < 0 || p > 1 {
			return out, fmt.Errorf("%w: top_p %v (want 0 to 1)", ErrInvalidRequest, p)
		}
		out.TopP = &p
	}
	if req.Seed != nil {
		seed := req.GetSeed()
		out.Seed = &seed
	}
	for i, st := range req.GetStop() {
		if st == "" {
			return out, fmt.Errorf("%w: stop[%d] is empty", ErrInvalidRequest, i)
		}
	}
	out.Stop = req.GetStop()
	return out, nil
}
