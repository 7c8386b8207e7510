package llamaclient

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Event is one chunk of a streamed chat completion.
type Event struct {
	ID    string
	Model string
	// Role is set on the first chunk ("assistant").
	Role string
	// Content is the token text of this chunk (may be empty, may contain U+FFFD and control characters).
	Content string
	// FinishReason is "stop", "length", ... on the last content chunk, else empty.
	FinishReason string
	// Usage comes with the final chunk when stream_options.include_usage is set.
	Usage *Usage
	// Timings come with the final chunk (llama-server extension).
	Timings *Timings
}

// Usage is the OpenAI-style token accounting.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Timings are llama-server's per-request timings.
type Timings struct {
	CacheN             int     `json:"cache_n"`
	PromptN            int     `json:"prompt_n"`
	PromptMS           float64 `json:"prompt_ms"`
	PromptPerSecond    float64 `json:"prompt_per_second"`
	PredictedN         int     `json:"predicted_n"`
	PredictedMS        float64 `json:"predicted_ms"`
	PredictedPerSecond float64 `json:"predicted_per_second"`
}

// chunk is the JSON of one "data:" event.
type chunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage   *Usage     `json:"usage"`
	Timings *Timings   `json:"timings"`
	Error   *errorJSON `json:"error"`
}

type errorJSON struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Type    string `json:"type"`
}

// MaxEventSize bounds one SSE line and one event's data.
const MaxEventSize = 1 << 20

// ErrEventTooLarge means a line or event exceeded MaxEventSize.
var ErrEventTooLarge = errors.New("server-sent event too large")

// Decoder reads llama-server's server-sent events. It is pure (no I/O besides reading r) and not safe for
// concurrent use.
//
// Following the SSE format, "data:" lines are joined until a blank line dispatches the event; comments
// (":...") and the id/retry fields are ignored; "event: error" or the non-standard "error:" field, as well
// as a data object with an "error" member, are error events.
type Decoder struct {
	r   *bufio.Reader
	err error
}

// NewDecoder returns a decoder reading r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next chunk. After "data: [DONE]" it returns io.EOF; if the input ends first (also in
// the middle of an event) it returns ErrIncompleteStream, wrapping the read error when there was one. An error event is returned as an
// *APIError with StatusCode 0. Errors are sticky.
func (d *Decoder) Next() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	ev, err := d.next()
	if err != nil {
		d.err = err
	}
	return ev, err
}

func (d *Decoder) next() (Event, error) {
	var (
		data      []byte
		hasData   bool
		eventName string
		errField  []byte
	)
	for {
		line, rerr := d.readLine()
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return Event{}, fmt.Errorf("%w: %w", ErrIncompleteStream, rerr)
		}
		atEOF := rerr != nil
		if atEOF {
			// An event not ended by a blank line is incomplete (SSE discards it); only a final
			// "data: [DONE]" is accepted without one.
			if hasData && errField == nil && string(bytes.TrimSpace(data)) == "[DONE]" {
				return Event{}, io.EOF
			}
			return Event{}, ErrIncompleteStream
		}
		if len(line) == 0 {
			if errField != nil {
				return Event{}, errorEvent(errField)
			}
			if hasData {
				ev, done, err := decodeData(data, eventName)
				if done {
					return Event{}, io.EOF
				}
				return ev, err
			}
			eventName = ""
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			if len(data)+len(value) > MaxEventSize {
				return Event{}, ErrEventTooLarge
			}
			data = append(data, value...)
			hasData = true
		case "event":
			eventName = string(value)
		case "error":
			errField = append([]byte(nil), value...)
		}
	}
}

// readLine returns the next line without its "\n" or "\r\n"; io.EOF when the input ended (with the last,
// unterminated line, if any, returned on the call before).
func (d *Decoder) readLine() ([]byte, error) {
	var line []byte
	for {
		frag, err := d.r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > MaxEventSize {
			return nil, ErrEventTooLarge
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 && errors.Is(err, io.EOF) {
			break // last line without "\n"; EOF is reported on the next call
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// decodeData decodes one event's data; done reports "[DONE]".
func decodeData(data []byte, eventName string) (ev Event, done bool, err error) {
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		return Event{}, true, nil
	}
	if eventName == "error" {
		return Event{}, false, errorEvent(data)
	}
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return Event{}, false, fmt.Errorf("decode stream chunk %q: %w", cleanText(data, 200), err)
	}
	if c.Error != nil {
		return Event{}, false, &APIError{Code: c.Error.Code, Type: c.Error.Type, Message: c.Error.Message}
	}
	ev = Event{ID: c.ID, Model: c.Model, Usage: c.Usage, Timings: c.Timings}
	for _, ch := range c.Choices {
		if ch.Delta.Role != "" {
			ev.Role = ch.Delta.Role
		}
		if ch.Delta.Content != nil {
			ev.Content += *ch.Delta.Content
		}
		if ch.FinishReason != nil {
			ev.FinishReason = *ch.FinishReason
		}
	}
	return ev, false, nil
}

// errorEvent decodes an error event's payload: {"error":{...}}, the bare {...} error object, or text.
func errorEvent(b []byte) error {
	var wrapped errorBody
	if json.Unmarshal(b, &wrapped) == nil && wrapped.Error != nil {
		return &APIError{Code: wrapped.Error.Code, Type: wrapped.Error.Type, Message: wrapped.Error.Message}
	}
	var bare errorJSON
	if json.Unmarshal(b, &bare) == nil && (bare.Message != "" || bare.Type != "") {
		return &APIError{Code: bare.Code, Type: bare.Type, Message: bare.Message}
	}
	return &APIError{Message: cleanText(b, maxErrorText)}
}
