package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/llm/internal/llamaclient"
)

// newHTTPClient is the client the service talks to llama-server with
// (health probes and chat). No overall timeout: chat streams are bounded by
// their context.
func newHTTPClient() *http.Client { return llamaclient.NewHTTPClient() }

// healthProbe is the readiness and health probe of the server at base:
// ready when /health answers 200 {"status":"ok"}.
func (s *Service) healthProbe(base string) supervisor.Probe {
	c, err := llamaclient.New(base, s.hc)
	if err != nil {
		return func(context.Context) (bool, error) { return false, err }
	}
	c = c.WithAPIKey(s.apiKey)
	return func(ctx context.Context) (bool, error) {
		h, err := c.Health(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return false, fmt.Errorf("no answer within %s", probeTimeout)
		case err != nil:
			return false, err
		case h.State == llamaclient.HealthOK:
			return true, nil
		case h.Err != nil:
			return false, fmt.Errorf("%s: %w", h.State, h.Err)
		case h.Message != "":
			return false, fmt.Errorf("%s (HTTP %d): %s", h.State, h.StatusCode, h.Message)
		}
		return false, fmt.Errorf("%s (HTTP %d)", h.State, h.StatusCode)
	}
}
