package enginepb

import (
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Every state and health the supervisor has maps to its own value;
// only what the supervisor never reports falls back to the proto's default.
func TestEnums(t *testing.T) {
	states := map[supervisor.State]commonv1.ServerStatus{
		supervisor.StateStopped:  commonv1.ServerStatus_SERVER_STATUS_STOPPED,
		supervisor.StateStarting: commonv1.ServerStatus_SERVER_STATUS_STARTING,
		supervisor.StateRunning:  commonv1.ServerStatus_SERVER_STATUS_RUNNING,
		supervisor.StateStopping: commonv1.ServerStatus_SERVER_STATUS_STOPPING,
		supervisor.StateCrashed:  commonv1.ServerStatus_SERVER_STATUS_CRASHED,
		supervisor.State(99):     commonv1.ServerStatus_SERVER_STATUS_UNSPECIFIED,
	}
	for s, want := range states {
		if got := Status(s); got != want {
			t.Errorf("Status(%v) = %v, want %v", s, got, want)
		}
	}
	healths := map[supervisor.Health]commonv1.HealthStatus{
		supervisor.HealthUnknown: commonv1.HealthStatus_HEALTH_STATUS_UNKNOWN,
		supervisor.HealthOK:      commonv1.HealthStatus_HEALTH_STATUS_OK,
		supervisor.HealthError:   commonv1.HealthStatus_HEALTH_STATUS_ERROR,
	}
	for h, want := range healths {
		if got := Health(h); got != want {
			t.Errorf("Health(%v) = %v, want %v", h, got, want)
		}
	}
}

func TestExit(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if Exit(nil) != nil {
		t.Error("Exit(nil) is not nil")
	}
	for _, c := range []struct {
		in   supervisor.ExitStatus
		want *commonv1.ProcessExit
	}{
		{supervisor.ExitStatus{Code: 3, At: at}, &commonv1.ProcessExit{ExitCode: 3, Time: timestamppb.New(at)}},
		{supervisor.ExitStatus{Code: -1, Signal: syscall.SIGKILL, At: at},
			&commonv1.ProcessExit{ExitCode: -1, Signal: "SIGKILL", Time: timestamppb.New(at)}},
	} {
		if got := Exit(&c.in); !proto.Equal(got, c.want) {
			t.Errorf("Exit(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
