// Package enginepb converts pkg/supervisor's view of an engine process (its
// Snapshot's state and health, how it exited) to the common/v1 messages that
// every engine service answers with. The services (llm, diffusion) call it at
// their gRPC edge; nothing below the edge knows the protos. Log lines are
// converted by package logstream, which serves them.
package enginepb

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Status is the ServerStatus of a process in state s.
func Status(s supervisor.State) commonv1.ServerStatus {
	switch s {
	case supervisor.StateStopped:
		return commonv1.ServerStatus_SERVER_STATUS_STOPPED
	case supervisor.StateStarting:
		return commonv1.ServerStatus_SERVER_STATUS_STARTING
	case supervisor.StateRunning:
		return commonv1.ServerStatus_SERVER_STATUS_RUNNING
	case supervisor.StateStopping:
		return commonv1.ServerStatus_SERVER_STATUS_STOPPING
	case supervisor.StateCrashed:
		return commonv1.ServerStatus_SERVER_STATUS_CRASHED
	}
	return commonv1.ServerStatus_SERVER_STATUS_UNSPECIFIED
}

// Health is the HealthStatus of a process whose latest probe gave h.
func Health(h supervisor.Health) commonv1.HealthStatus {
	switch h {
	case supervisor.HealthOK:
		return commonv1.HealthStatus_HEALTH_STATUS_OK
	case supervisor.HealthError:
		return commonv1.HealthStatus_HEALTH_STATUS_ERROR
	}
	return commonv1.HealthStatus_HEALTH_STATUS_UNKNOWN
}

// Exit is the ProcessExit of e; nil when no process ended (e is nil).
func Exit(e *supervisor.ExitStatus) *commonv1.ProcessExit {
	if e == nil {
		return nil
	}
	return &commonv1.ProcessExit{ExitCode: int32(e.Code), Signal: e.SignalName(), Time: timestamppb.New(e.At)}
}
