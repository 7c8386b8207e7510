// Package llamaclient is a small HTTP client for a llama-server (llama.cpp) the LLM service supervises:
// /health with its three states (connection refused, 503 "Loading model", 200 ok) and streaming chat
// completions on /v1/chat/completions (server-sent events parsed into token deltas), or whole
// ones (Chat) for clients that do not show tokens as they come.
//
// The SSE parser (Decoder) and the health and error parsers are pure and tested on transcripts of the real
// llama-server under testdata/ (recorded by ../llamalog/testdata/capture). Random-weight test models emit
// U+FFFD and control characters: they pass through as text; invalid UTF-8 becomes U+FFFD, so every string
// this package returns is valid UTF-8 (safe for protobuf string fields).
package llamaclient

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one llama-server. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	// key is llama-server's API key (--api-key, LLAMA_API_KEY), sent as a
	// bearer token on every request; "" sends none.
	key string
}

// WithAPIKey returns a copy of c that authenticates with llama-server's API
// key (an empty key sends none).
func (c *Client) WithAPIKey(key string) *Client {
	cp := *c
	cp.key = key
	return &cp
}

// authorize adds the API key to req.
func (c *Client) authorize(req *http.Request) {
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
}

// New returns a client for the server at baseURL (e.g. "http://127.0.0.1:8080"). A nil hc gets a client of
// its own (NewHTTPClient).
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("llama-server url %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("llama-server url %q: want http://host:port", baseURL)
	}
	if hc == nil {
		hc = NewHTTPClient()
	}
	return &Client{base: u, hc: hc}, nil
}

// IdleTimeout is how long an idle connection to llama-server is kept: less than the
// keep-alive timeout llama-server announces (Keep-Alive: timeout=5), so the client gives a
// connection up before llama-server closes it under a request written on it.
const IdleTimeout = 4 * time.Second

// NewHTTPClient returns the HTTP client for llama-server: a short dial timeout, no overall
// timeout (streams are bounded by their context; a queued request may wait for a free
// slot), and idle connections kept for reuse up to IdleTimeout.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     IdleTimeout,
	}}
}

// BaseURL is the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

func (c *Client) endpoint(path string) string { return c.base.String() + path }
