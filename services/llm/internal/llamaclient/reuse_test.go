package llamaclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/genailab/genailab/pkg/ggufgen"
)

// countingClient is NewHTTPClient's client with its dials counted.
func countingClient(t *testing.T, url string) (*Client, *atomic.Int32) {
	t.Helper()
	hc := NewHTTPClient()
	tr := hc.Transport.(*http.Transport)
	dial := tr.DialContext
	var dials atomic.Int32
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c, &dials
}

// Sequential non-streamed chats share one connection to the real llama-server.
func TestRealWholeChatsReuseOneConnection(t *testing.T) {
	srv, _ := realServer(t, ggufgen.DefaultConfig())
	c, dials := countingClient(t, srv.URL)
	req := ChatRequest{Messages: []Message{{Role: "user", Content: "Hello"}}, MaxTokens: 8}
	for i := range 20 {
		out, err := c.Chat(context.Background(), req)
		if err != nil {
			t.Fatalf("chat %d: %v", i, err)
		}
		if out.Content == "" || out.FinishReason == "" || out.Usage == nil || out.Usage.CompletionTokens < 1 || out.Usage.CompletionTokens > 8 ||
			out.Timings == nil || out.Timings.PredictedN != out.Usage.CompletionTokens {
			t.Fatalf("chat %d: %+v usage %+v timings %+v", i, out, out.Usage, out.Timings)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("20 sequential chats dialled %d connections, want 1", n)
	}
	// Errors keep their sentinels.
	long := ChatRequest{Messages: []Message{{Role: "user", Content: strings.Repeat("hello world ", 300)}}, MaxTokens: 4}
	if _, err := c.Chat(context.Background(), long); !errors.Is(err, ErrContextExceeded) {
		t.Fatalf("long prompt: %v", err)
	}
}

// llama-server closes the connection after every streamed reply: each streamed chat
// opens its own (asked for with Connection: close), none is put back into the pool to
// race that close, and a non-streamed chat after them still finds a live connection.
func TestRealStreamedChatsDoNotPoolClosedConnections(t *testing.T) {
	srv, _ := realServer(t, ggufgen.DefaultConfig())
	c, dials := countingClient(t, srv.URL)
	req := ChatRequest{Messages: []Message{{Role: "user", Content: "Hello"}}, MaxTokens: 8}
	const n = 10
	for i := range n {
		s, err := c.ChatStream(context.Background(), req)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		for {
			_, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
		}
	}
	if got := dials.Load(); got != n {
		t.Fatalf("%d streamed chats dialled %d connections, want %d (one each, no retry)", n, got, n)
	}
	for i := range 3 {
		if _, err := c.Chat(context.Background(), req); err != nil {
			t.Fatalf("whole chat %d after the streams: %v", i, err)
		}
	}
	if got := dials.Load(); got != n+1 {
		t.Fatalf("3 whole chats after the streams dialled %d connections, want 1", got-n)
	}
}
