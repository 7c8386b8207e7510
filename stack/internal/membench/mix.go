package membench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Kind is one kind of request of the mix.
type Kind struct {
	Name   string
	Method string
	Path   string
	Body   string
}

// Mix is the request mix, in the order it is sent, over and over: out of
// ten requests four health checks, three usage reads, two 4-token chats
// and one 64×64 one-step image.
var Mix = []Kind{
	health, usage, chat, health, usage, image, health, chat, usage, health,
}

var (
	health = Kind{Name: "health", Method: http.MethodGet, Path: "/health"}
	usage  = Kind{Name: "usage", Method: http.MethodGet, Path: "/v1/system/usage"}
	chat   = Kind{Name: "chat", Method: http.MethodPost, Path: "/v1/llm/chat",
		Body: `{"messages":[{"role":"user","content":"hi"}],"maxTokens":4}`}
	image = Kind{Name: "image", Method: http.MethodPost, Path: "/v1/images/generations",
		Body: `{"prompt":"a red fox","width":64,"height":64,"steps":1,"seed":1}`}
)

// Runner sends the mix to a gateway, one request at a time (the image
// path serves one image at a time), keeping count across calls.
type Runner struct {
	Gateway string // base URL, "http://127.0.0.1:8080"
	Client  *http.Client
	sent    int
}

// Sent is how many requests the runner has sent.
func (r *Runner) Sent() int { return r.sent }

// Run sends n more requests of the mix; any answer but 200 is an error.
func (r *Runner) Run(ctx context.Context, n int) error {
	for range n {
		k := Mix[r.sent%len(Mix)]
		if err := r.do(ctx, k); err != nil {
			return fmt.Errorf("request %d (%s): %w", r.sent, k.Name, err)
		}
		r.sent++
	}
	return nil
}

func (r *Runner) do(ctx context.Context, k Kind) error {
	var body io.Reader
	if k.Body != "" {
		body = strings.NewReader(k.Body)
	}
	req, err := http.NewRequestWithContext(ctx, k.Method, r.Gateway+k.Path, body)
	if err != nil {
		return err
	}
	if k.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", k.Method, k.Path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if k.Name == "chat" && !bytes.Contains(data, []byte(`"done"`)) {
		return fmt.Errorf("chat reply without its done line: %s", data)
	}
	return nil
}
