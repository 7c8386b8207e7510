package openai

import (
	"encoding/json"
	"testing"
)

// The pre-encoded delta events are byte for byte what json.Marshal of the whole chunk
// gives, for any text and for ids and models holding the marker's bytes.
func TestDeltaWriterMatchesMarshal(t *testing.T) {
	for _, model := range []string{"tiny", "m\x00odel", `q"<&>`} {
		d := newDeltaWriter("chatcmpl-1", 1700000000, model)
		for _, content := range []string{"a", " hello", "\x00", "\ufffd\u2028<b>&\"\\\n\t", "日本"} {
			b, err := json.Marshal(chatResponse{ID: "chatcmpl-1", Object: "chat.completion.chunk", Created: 1700000000, Model: model,
				Choices: []chatChoice{{Delta: &chatChoiceMessage{Content: content}}}})
			if err != nil {
				t.Fatal(err)
			}
			want := "data: " + string(b) + "\n\n"
			if got := string(d.event(content)); got != want {
				t.Errorf("model %q content %q:\n got %q\nwant %q", model, content, got, want)
			}
		}
	}
}
