package service

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/supervisor"
)

// The chat gate admits chat requests to llama-server. A chat is served at
// once when the server is running; it waits (bounded) while the server is
// stopped for an offload, starting, restarting or about to be restarted
// after a crash; it fails at once when the server is stopped on purpose or
// crashed for good. Admitted chats are counted (LLMInfo.in_flight_requests,
// Stop's drain) and can be interrupted before a stop.

// admission is an admitted chat.
type admission struct {
	ctx     context.Context // ends when the client goes away or the chat is interrupted
	baseURL string
	waited  time.Duration
	release func()
}

// admitNotifying waits until a chat may be sent to llama-server, at most
// wait. When the chat has to wait, it calls onWait (if set) once with a
// waiting status; an error from onWait (the client is gone) ends the wait.
func (s *Service) admitNotifying(ctx context.Context, wait time.Duration, onWait func(*llmv1.ChatWaiting) error) (*admission, error) {
	begin := time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		snap := s.sup.Snapshot()
		serve, hold, why := s.admissionLocked(snap)
		if serve {
			a := s.registerLocked(ctx, snap)
			s.mu.Unlock()
			a.waited = time.Since(begin)
			return a, nil
		}
		changed := s.changed
		var notice *llmv1.ChatWaiting
		if hold && onWait != nil {
			notice = s.waitingLocked(why, time.Now())
		}
		s.mu.Unlock()
		if !hold {
			return nil, fmt.Errorf("%w (%s)", ErrNotRunning, why)
		}
		if notice != nil {
			if err := onWait(notice); err != nil {
				return nil, fmt.Errorf("send the waiting status: %w", err)
			}
			onWait = nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, fmt.Errorf("%w: waited %s while it was %s (wait_timeout_ms bounds this wait)",
				ErrWaitTimeout, time.Since(begin).Round(time.Millisecond), why)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// admissionLocked decides: serve now, hold (wait for a change), or refuse;
// why describes the state. s.mu must be held.
func (s *Service) admissionLocked(snap supervisor.Snapshot) (serve, hold bool, why string) {
	switch {
	case s.closing:
		return false, false, "the llm service is shutting down"
	case s.offloaded:
		return false, true, "stopped for an offload"
	case s.restoring:
		return false, true, "restoring the conversations saved before an offload"
	case s.restarting:
		return false, true, "restarting"
	case s.draining > 0:
		return false, false, "being stopped"
	case s.cur == nil:
		return false, false, "never started; call Start first"
	}
	switch snap.State {
	case supervisor.StateRunning:
		return true, false, ""
	case supervisor.StateStarting:
		return false, true, "starting"
	case supervisor.StateCrashed:
		if !snap.NextRestartAt.IsZero() {
			return false, true, "restarting after a crash"
		}
		return false, false, "crashed; see GetInfo.last_error"
	case supervisor.StateStopping:
		return false, false, "being stopped"
	}
	return false, false, "stopped; call Start first"
}

// registerLocked records an admitted chat. s.mu must be held.
func (s *Service) registerLocked(ctx context.Context, snap supervisor.Snapshot) *admission {
	cctx, cancel := context.WithCancelCause(ctx)
	s.chatID++
	id := s.chatID
	s.chats[id] = cancel
	s.notifyLocked()
	return &admission{
		ctx:     cctx,
		baseURL: baseURL(s.cur.cfg.GetHost(), snap.Port),
		release: func() {
			cancel(nil)
			s.mu.Lock()
			delete(s.chats, id)
			s.notifyLocked()
			s.mu.Unlock()
		},
	}
}

// drain waits until no chat is in flight, at most d.
func (s *Service) drain(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		s.mu.Lock()
		n, changed := len(s.chats), s.changed
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			s.log.Info("drain timed out; interrupting chats in flight", "in_flight", n, "drain", d)
			return
		case <-ctx.Done():
			return
		}
	}
}

// cancelChats interrupts every chat in flight with cause.
func (s *Service) cancelChats(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cancel := range s.chats {
		cancel(cause)
	}
}

// baseURL is llama-server's HTTP address as a client on this host reaches
// it (a wildcard bind is reached through loopback).
func baseURL(host string, port int) string {
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// offloadInfo is what the Stop of an offload said about it, for waiting
// chats.
type offloadInfo struct {
	jobID    string
	expected time.Duration // 0: unknown
	since    time.Time
}

func newOffloadInfo(req *llmv1.StopRequest) offloadInfo {
	o := offloadInfo{jobID: req.GetJobId(), since: time.Now()}
	if req.ExpectedDownMs != nil && req.GetExpectedDownMs() > 0 {
		o.expected = time.Duration(req.GetExpectedDownMs()) * time.Millisecond
	}
	return o
}

// waitingLocked is the waiting status of a chat held because the server is
// why. s.mu must be held.
func (s *Service) waitingLocked(why string, now time.Time) *llmv1.ChatWaiting {
	if !s.offloaded {
		return &llmv1.ChatWaiting{Message: "waiting: the LLM is " + why}
	}
	w := &llmv1.ChatWaiting{Message: "waiting: the LLM is offloaded for an image", JobId: s.offload.jobID}
	if s.offload.expected > 0 {
		left := max(s.offload.expected-now.Sub(s.offload.since), 0)
		w.ExpectedWaitMs = proto.Int64(left.Milliseconds())
		w.Message += fmt.Sprintf(", expected back in ~%d s", int64(math.Ceil(left.Seconds())))
	}
	if w.JobId != "" {
		w.Message += " (job " + w.JobId + ")"
	}
	return w
}

// sendWaiting sends a waiting status as the first message of a chat stream.
func sendWaiting(stream grpc.ServerStreamingServer[llmv1.ChatResponse]) func(*llmv1.ChatWaiting) error {
	return func(w *llmv1.ChatWaiting) error {
		return stream.Send(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Waiting{Waiting: w}})
	}
}

// chatWait is the bound of a chat's wait for the server.
func (s *Service) chatWait(req *llmv1.ChatRequest) time.Duration {
	if ms := req.GetWaitTimeoutMs(); ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return s.opts.ChatWaitTimeout
}
