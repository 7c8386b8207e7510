package llamaclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
)

// HealthState is what /health says.
type HealthState int

// Health states, in the order a starting llama-server goes through them.
const (
	// HealthUnreachable: no HTTP answer (connection refused before the socket is bound, or any other
	// transport error; see Health.Refused).
	HealthUnreachable HealthState = iota
	// HealthLoading: 503 {"error":{"message":"Loading model","type":"unavailable_error","code":503}}.
	HealthLoading
	// HealthOK: 200 {"status":"ok"}.
	HealthOK
	// HealthError: any other answer.
	HealthError
)

func (s HealthState) String() string {
	switch s {
	case HealthUnreachable:
		return "unreachable"
	case HealthLoading:
		return "loading"
	case HealthOK:
		return "ok"
	case HealthError:
		return "error"
	}
	return fmt.Sprintf("HealthState(%d)", int(s))
}

// Health is one /health observation.
type Health struct {
	State      HealthState
	StatusCode int    // HTTP status (0 when unreachable)
	Message    string // error message of a 503/other answer
	Refused    bool   // unreachable because the connection was refused (nothing listening yet/anymore)
	Err        error  // the transport error when unreachable
}

// ParseHealth classifies a /health answer. It is pure.
func ParseHealth(status int, body []byte) Health {
	h := Health{StatusCode: status}
	switch status {
	case http.StatusOK:
		var ok struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(body, &ok) == nil && ok.Status == "ok" {
			h.State = HealthOK
			return h
		}
		h.State, h.Message = HealthError, "unexpected body: "+cleanText(body, maxErrorText)
		return h
	case http.StatusServiceUnavailable:
		e := ParseError(status, body)
		h.Message = e.Message
		if errors.Is(e, ErrLoading) {
			h.State = HealthLoading
		} else {
			h.State = HealthError
		}
		return h
	}
	h.State, h.Message = HealthError, ParseError(status, body).Message
	return h
}

// Health asks GET /health. Transport failures are a HealthUnreachable observation, not an error; the
// error is non-nil only when ctx ended (so pollers stop).
func (c *Client) Health(ctx context.Context) (Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/health"), nil)
	if err != nil {
		return Health{}, fmt.Errorf("health: %w", err)
	}
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Health{}, ctx.Err()
		}
		return Health{State: HealthUnreachable, Refused: errors.Is(err, syscall.ECONNREFUSED), Err: err}, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		if ctx.Err() != nil {
			return Health{}, ctx.Err()
		}
		return Health{State: HealthUnreachable, StatusCode: resp.StatusCode, Err: err}, nil
	}
	return ParseHealth(resp.StatusCode, body), nil
}
