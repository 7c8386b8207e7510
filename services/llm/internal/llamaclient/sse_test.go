package llamaclient

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeAll reads events until an error and returns them with the error.
func decodeAll(r io.Reader) ([]Event, error) {
	d := NewDecoder(r)
	var evs []Event
	for {
		ev, err := d.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

type summary struct {
	content string
	role    string
	finish  string
	usage   *Usage
	timings *Timings
	n       int
}

func summarize(evs []Event) summary {
	var s summary
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Content)
		if ev.Role != "" {
			s.role = ev.Role
		}
		if ev.FinishReason != "" {
			s.finish = ev.FinishReason
		}
		if ev.Usage != nil {
			s.usage = ev.Usage
		}
		if ev.Timings != nil {
			s.timings = ev.Timings
		}
	}
	s.content, s.n = b.String(), len(evs)
	return s
}

func TestDecodeRealStream(t *testing.T) {
	raw := fixture(t, "chat_stream.sse")
	evs, err := decodeAll(strings.NewReader(string(raw)))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v, want io.EOF after [DONE]", err)
	}
	// One event per "data:" line except [DONE].
	if want := strings.Count(string(raw), "data: ") - 1; len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	s := summarize(evs)
	if s.role != "assistant" || s.finish != "length" || s.content == "" {
		t.Fatalf("summary %+v", s)
	}
	if s.timings == nil || s.timings.PredictedN != 16 || s.timings.PredictedPerSecond <= 0 {
		t.Fatalf("timings %+v", s.timings)
	}
	if s.usage != nil {
		t.Fatalf("usage without include_usage: %+v", s.usage)
	}
	if !strings.ContainsRune(s.content, utf8.RuneError) || !strings.ContainsAny(s.content, "\x03\x06") {
		t.Fatalf("fixture should carry U+FFFD and control characters: %q", s.content)
	}

	// The non-streamed answer to the same request (same seed) is the same text, except that the stream
	// never sends a trailing incomplete UTF-8 sequence, which the non-streamed answer ends with as U+FFFD.
	var full struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	if err := json.Unmarshal(fixture(t, "chat_nonstream.json"), &full); err != nil {
		t.Fatal(err)
	}
	want := full.Choices[0].Message.Content
	rest, ok := strings.CutPrefix(want, s.content)
	if !ok || strings.Trim(rest, "\ufffd") != "" {
		t.Fatalf("stream content %q is not non-stream content %q minus trailing U+FFFD", s.content, want)
	}
}

func TestDecodeRealStreamWithUsage(t *testing.T) {
	evs, err := decodeAll(strings.NewReader(string(fixture(t, "chat_stream_usage.sse"))))
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	s := summarize(evs)
	if s.usage == nil || s.usage.CompletionTokens != 16 || s.usage.TotalTokens != s.usage.PromptTokens+16 {
		t.Fatalf("usage %+v", s.usage)
	}
	last := evs[len(evs)-1]
	if last.Usage == nil || last.Content != "" || last.FinishReason != "" {
		t.Fatalf("usage chunk (choices: []) = %+v", last)
	}
	if s.finish != "length" || s.timings == nil {
		t.Fatalf("summary %+v", s)
	}
}

func TestDecodeRealLongStream(t *testing.T) {
	evs, err := decodeAll(strings.NewReader(string(fixture(t, "chat_stream_long.sse"))))
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	s := summarize(evs)
	if s.n < 100 || s.finish == "" || !utf8.ValidString(s.content) {
		t.Fatalf("%d events, finish %q, valid utf8 %v", s.n, s.finish, utf8.ValidString(s.content))
	}
	for _, ev := range evs {
		if !utf8.ValidString(ev.Content) || !utf8.ValidString(ev.ID) {
			t.Fatalf("invalid UTF-8 in %+v", ev)
		}
	}
}

func TestDecodeTruncatedRealStream(t *testing.T) {
	raw := string(fixture(t, "chat_stream_long.sse"))
	for _, cut := range []int{0, 10, len(raw) / 3, len(raw) / 2, len(raw) - len("data: [DONE]\n\n")} {
		evs, err := decodeAll(strings.NewReader(raw[:cut]))
		if !errors.Is(err, ErrIncompleteStream) {
			t.Fatalf("cut at %d: err %v after %d events, want ErrIncompleteStream", cut, err, len(evs))
		}
	}
	// A stream cut in the middle of a JSON line yields the complete events, then an error.
	evs, err := decodeAll(strings.NewReader(raw[:len(raw)/2]))
	if len(evs) == 0 || err == nil {
		t.Fatalf("%d events, %v", len(evs), err)
	}
}

func TestDecodeSyntheticForms(t *testing.T) {
	// Variations the SSE format allows or llama-server versions use; the real transcripts above cover what
	// this version sends.
	const chunk = `{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"hi"}}],"id":"x"}`
	for _, tc := range []struct {
		name    string
		in      string
		content string
		wantErr error
	}{
		{"crlf", "data: " + chunk + "\r\n\r\ndata: [DONE]\r\n\r\n", "hi", io.EOF},
		{"no space after colon", "data:" + chunk + "\n\ndata:[DONE]\n\n", "hi", io.EOF},
		{"comments and ids", ": ping\nid: 7\nretry: 10\ndata: " + chunk + "\n\n: bye\ndata: [DONE]\n\n", "hi", io.EOF},
		{"done without blank line", "data: " + chunk + "\n\ndata: [DONE]", "hi", io.EOF},
		{"multi-line data", "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n", "hi", io.EOF},
		{"no done", "data: " + chunk + "\n\n", "hi", ErrIncompleteStream},
		{"empty", "", "", ErrIncompleteStream},
		{"invalid utf8 in json string", "data: {\"choices\":[{\"delta\":{\"content\":\"a\xff\xfeb\"}}]}\n\ndata: [DONE]\n\n", "a\ufffd\ufffdb", io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := decodeAll(strings.NewReader(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got := summarize(evs).content; got != tc.content {
				t.Fatalf("content %q, want %q", got, tc.content)
			}
		})
	}
}

func TestDecodeErrorEvents(t *testing.T) {
	const body = `{"error":{"code":500,"message":"boom","type":"server_error"}}`
	for _, in := range []string{
		"error: " + body + "\n\n",
		"data: " + body + "\n\n",
		"event: error\ndata: " + body + "\n\n",
		"event: error\ndata: {\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}\n\n",
	} {
		d := NewDecoder(strings.NewReader(`data: {"choices":[{"delta":{"content":"x"}}]}` + "\n\n" + in))
		if ev, err := d.Next(); err != nil || ev.Content != "x" {
			t.Fatalf("%q: first event %+v %v", in, ev, err)
		}
		_, err := d.Next()
		var ae *APIError
		if !errors.As(err, &ae) || ae.Message != "boom" || ae.Type != "server_error" || ae.Code != 500 || ae.StatusCode != 0 {
			t.Fatalf("%q: err %#v", in, err)
		}
		if _, again := d.Next(); again != err {
			t.Fatalf("error not sticky: %v", again)
		}
	}
	_, err := decodeAll(strings.NewReader("error: something broke\n\n"))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Message != "something broke" {
		t.Fatalf("text error event: %v", err)
	}
}

func TestDecodeRejectsGarbageAndHugeEvents(t *testing.T) {
	if _, err := decodeAll(strings.NewReader("data: {not json\n\n")); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("garbage: %v", err)
	}
	huge := "data: \"" + strings.Repeat("a", MaxEventSize) + "\"\n\n"
	if _, err := decodeAll(strings.NewReader(huge)); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("huge line: %v", err)
	}
	many := strings.Repeat("data: "+strings.Repeat("b", 1000)+"\n", MaxEventSize/1000+2) + "\n"
	if _, err := decodeAll(strings.NewReader(many)); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("huge event: %v", err)
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add(string(fixture(f, "chat_stream.sse")))
	f.Add(string(fixture(f, "chat_stream_usage.sse")))
	f.Add("error: x\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		evs, err := decodeAll(strings.NewReader(s))
		if err == nil {
			t.Fatal("decodeAll ended without error")
		}
		for _, ev := range evs {
			if !utf8.ValidString(ev.Content) || !utf8.ValidString(ev.Role) || !utf8.ValidString(ev.FinishReason) {
				t.Fatalf("invalid UTF-8 in %+v", ev)
			}
		}
	})
}

func BenchmarkDecodeLongStream(b *testing.B) {
	raw := string(fixture(b, "chat_stream_long.sse"))
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := decodeAll(strings.NewReader(raw)); !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
	}
}
