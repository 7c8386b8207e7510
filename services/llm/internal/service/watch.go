package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/enginepb"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/supervisor"
)

// runBridge follows the supervisor's events: it wakes chats waiting for a
// state change and turns each event into a WatchInfo event. It ends when
// the supervisor ends.
func (s *Service) runBridge() {
	defer close(s.bridge)
	defer s.events.Close()
	cur := s.sup.Events(0)
	for {
		e, err := cur.Next(context.Background())
		if err != nil {
			return
		}
		s.notify()
		if ev := s.toWatchEvent(e.Value); ev != nil {
			s.events.Append(ev)
		}
		if f := s.opts.OnServing; f != nil {
			f(s.Serving())
		}
	}
}

// eventTypes maps supervisor events to contract events. "stopping" has no
// contract event: the STOPPED event follows it.
var eventTypes = map[supervisor.EventKind]llmv1.LLMEventType{
	supervisor.EventStarted:       llmv1.LLMEventType_LLM_EVENT_TYPE_STARTED,
	supervisor.EventReady:         llmv1.LLMEventType_LLM_EVENT_TYPE_READY,
	supervisor.EventStartFailed:   llmv1.LLMEventType_LLM_EVENT_TYPE_START_FAILED,
	supervisor.EventStopped:       llmv1.LLMEventType_LLM_EVENT_TYPE_STOPPED,
	supervisor.EventCrashed:       llmv1.LLMEventType_LLM_EVENT_TYPE_CRASHED,
	supervisor.EventRestarting:    llmv1.LLMEventType_LLM_EVENT_TYPE_RESTARTING,
	supervisor.EventRestarted:     llmv1.LLMEventType_LLM_EVENT_TYPE_RESTARTED,
	supervisor.EventGaveUp:        llmv1.LLMEventType_LLM_EVENT_TYPE_GAVE_UP,
	supervisor.EventHealthChanged: llmv1.LLMEventType_LLM_EVENT_TYPE_HEALTH_CHANGED,
}

// toWatchEvent converts a supervisor event; nil for events the contract
// has no type for. The info is the current snapshot with the event's own
// state, pid and exit, so that a reader sees them consistent.
func (s *Service) toWatchEvent(e supervisor.Event) *llmv1.WatchInfoResponse {
	typ, ok := eventTypes[e.Kind]
	if !ok {
		return nil
	}
	info := s.info()
	info.Status = enginepb.Status(e.State)
	if e.Kind == supervisor.EventHealthChanged {
		info.Health = enginepb.Health(e.Health)
	}
	out := &llmv1.WatchInfoResponse{Type: typ, Time: timestamppb.New(e.Time), Info: info, Message: eventMessage(e)}
	if e.Exit != nil {
		out.Exit = enginepb.Exit(e.Exit)
	}
	return out
}

// eventMessage is the human-readable detail of an event.
func eventMessage(e supervisor.Event) string {
	switch e.Kind {
	case supervisor.EventStarted:
		return fmt.Sprintf("llama-server started (pid %d)", e.Pid)
	case supervisor.EventReady:
		return fmt.Sprintf("llama-server ready (pid %d)", e.Pid)
	case supervisor.EventStopped:
		if e.Exit != nil {
			return fmt.Sprintf("llama-server stopped (%s)", e.Exit)
		}
		return "llama-server stopped"
	case supervisor.EventCrashed:
		if e.Exit != nil {
			return fmt.Sprintf("llama-server crashed (%s); its last output is in last_error and StreamLogs", e.Exit)
		}
	case supervisor.EventRestarting:
		msg := fmt.Sprintf("restart %d in %s, at %s", e.Attempt, e.Delay.Round(time.Millisecond),
			e.Time.Add(e.Delay).UTC().Format(time.RFC3339))
		if e.Exit != nil {
			msg += fmt.Sprintf(" (last exit: %s)", e.Exit)
		}
		if e.CrashLoop {
			msg = fmt.Sprintf("crash looping: llama-server failed %d times in a row; ", e.Attempt) + msg
		}
		return msg
	case supervisor.EventRestarted:
		return fmt.Sprintf("restarted (attempt %d, pid %d)", e.Attempt, e.Pid)
	case supervisor.EventHealthChanged:
		if e.Err != nil {
			return fmt.Sprintf("health %s: %v", e.Health, e.Err)
		}
		return "health " + e.Health.String()
	}
	if e.Err != nil {
		return explainStart(e.Err).Error()
	}
	return string(e.Kind)
}

// WatchInfo implements LLMService: the current snapshot, then one event per
// change. A reader too slow for the event ring gets a fresh snapshot saying
// how many events it missed.
func (s *Service) WatchInfo(_ *llmv1.WatchInfoRequest, stream grpc.ServerStreamingServer[llmv1.WatchInfoResponse]) error {
	ctx := stream.Context()
	cur := s.events.Subscribe(0)
	if err := stream.Send(snapshotEvent(s.info(), "current state")); err != nil {
		return err
	}
	for {
		e, err := cur.Next(ctx)
		if errors.Is(err, logring.ErrClosed) {
			return toStatus(fmt.Errorf("watch: %w", supervisor.ErrClosed))
		}
		if err != nil {
			return toStatus(err)
		}
		if e.Missed > 0 {
			if err := stream.Send(snapshotEvent(s.info(), fmt.Sprintf("missed %d events", e.Missed))); err != nil {
				return err
			}
		}
		if err := stream.Send(e.Value); err != nil {
			return err
		}
	}
}

func snapshotEvent(info *llmv1.LLMInfo, msg string) *llmv1.WatchInfoResponse {
	return &llmv1.WatchInfoResponse{
		Type: llmv1.LLMEventType_LLM_EVENT_TYPE_SNAPSHOT, Time: timestamppb.Now(), Info: info, Message: msg,
	}
}
