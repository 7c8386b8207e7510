package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/enginepb"
	"github.com/genailab/genailab/pkg/supervisor"
)

// GetInfo implements LLMService.
func (s *Service) GetInfo(context.Context, *llmv1.GetInfoRequest) (*llmv1.GetInfoResponse, error) {
	return &llmv1.GetInfoResponse{Info: s.info()}, nil
}

// info is the current snapshot.
func (s *Service) info() *llmv1.LLMInfo {
	return s.infoFrom(s.sup.Snapshot())
}

// infoFrom builds an LLMInfo from a supervisor snapshot and this service's
// own state.
func (s *Service) infoFrom(snap supervisor.Snapshot) *llmv1.LLMInfo {
	s.mu.Lock()
	cur, binary, offloaded, inflight := s.cur, s.binary, s.offloaded, len(s.chats)
	s.mu.Unlock()
	info := &llmv1.LLMInfo{
		Status:           enginepb.Status(snap.State),
		Health:           enginepb.Health(snap.Health),
		Restarts:         int32(snap.Restarts),
		InFlightRequests: int32(inflight),
		Offloaded:        offloaded,
		BinaryPath:       binary,
		LastExit:         enginepb.Exit(snap.LastExit),
	}
	if snap.LastError != nil {
		info.LastError = snap.LastError.Error()
	}
	// The restart backoff, as fields (the message below says the same in words).
	info.CrashLooping = snap.CrashLooping
	info.ConsecutiveCrashes = int32(snap.ConsecutiveCrashes)
	if !snap.NextRestartAt.IsZero() {
		info.NextRestartAt = timestamppb.New(snap.NextRestartAt)
	}
	if snap.CrashLooping {
		// The health of the LLM as a whole: it cannot serve, and says
		// when it tries again.
		info.Health = commonv1.HealthStatus_HEALTH_STATUS_ERROR
		info.LastError = crashLoopMessage(snap, time.Now())
	}
	if cur != nil {
		info.Config = proto.CloneOf(cur.cfg)
	}
	if snap.Pid != 0 {
		info.Pid = int32(snap.Pid)
		info.Port = int32(snap.Port)
		info.StartedAt = timestamppb.New(snap.StartedAt)
		if cur != nil {
			info.ModelId = cur.cfg.GetModelId()
			info.BaseUrl = baseURL(cur.cfg.GetHost(), snap.Port)
		}
	}
	return info
}

// crashLoopMessage says that the server is crash looping, how the last
// attempt ended and when the next one is due.
func crashLoopMessage(snap supervisor.Snapshot, now time.Time) string {
	msg := fmt.Sprintf("crash looping: llama-server failed %d times in a row", snap.ConsecutiveCrashes)
	if e := snap.LastExit; e != nil {
		msg += fmt.Sprintf(" (last exit: %s at %s)", e, e.At.UTC().Format(time.RFC3339))
	}
	switch {
	case snap.State == supervisor.StateStarting:
		msg += "; an attempt to restart it is in progress"
	case !snap.NextRestartAt.IsZero():
		msg += fmt.Sprintf("; next attempt at %s (in %s)", snap.NextRestartAt.UTC().Format(time.RFC3339),
			max(snap.NextRestartAt.Sub(now), 0).Round(time.Millisecond))
	}
	if snap.LastError != nil {
		msg += "; last error: " + snap.LastError.Error()
	}
	return msg
}

// Serving reports whether the LLM can serve, and why not: false only while
// crash looping (stopped, offloaded or starting are normal states of an
// LLM that is managed, not failures).
func (s *Service) Serving() (bool, string) {
	snap := s.sup.Snapshot()
	if snap.CrashLooping {
		return false, firstLine(crashLoopMessage(snap, time.Now()))
	}
	return true, ""
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
