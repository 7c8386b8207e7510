package server

import (
	"google.golang.org/protobuf/types/known/timestamppb"
	"slices"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/diffusion/internal/engine"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

func toMode(m diffusionv1.EngineMode) engine.Mode {
	if m == diffusionv1.EngineMode_ENGINE_MODE_SERVER {
		return engine.ModeServer
	}
	return engine.ModeCLI
}

func fromMode(m engine.Mode) diffusionv1.EngineMode {
	switch m {
	case engine.ModeServer:
		return diffusionv1.EngineMode_ENGINE_MODE_SERVER
	case engine.ModeCLI:
		return diffusionv1.EngineMode_ENGINE_MODE_CLI
	}
	return diffusionv1.EngineMode_ENGINE_MODE_UNSPECIFIED
}

func toMemory(c *diffusionv1.DiffusionConfig) sdargs.Memory {
	return sdargs.Memory{
		OffloadToCPU: c.GetOffloadToCpu(),
		VAETiling:    c.GetVaeTiling(),
		ClipOnCPU:    c.GetClipOnCpu(),
		VAEOnCPU:     c.GetVaeOnCpu(),
		DiffusionFA:  c.GetDiffusionFa(),
	}
}

func fromConfig(c engine.Config, port int) *diffusionv1.DiffusionConfig {
	if c.Mode == 0 {
		return nil
	}
	if port == 0 {
		port = c.Port
	}
	return &diffusionv1.DiffusionConfig{
		Mode:         fromMode(c.Mode),
		ModelId:      c.ModelID,
		Threads:      int32(c.Threads),
		Port:         int32(port),
		OffloadToCpu: c.Memory.OffloadToCPU,
		VaeTiling:    c.Memory.VAETiling,
		ClipOnCpu:    c.Memory.ClipOnCPU,
		VaeOnCpu:     c.Memory.VAEOnCPU,
		DiffusionFa:  c.Memory.DiffusionFA,
	}
}

var statuses = map[engine.Status]commonv1.ServerStatus{
	engine.StatusStopped:  commonv1.ServerStatus_SERVER_STATUS_STOPPED,
	engine.StatusStarting: commonv1.ServerStatus_SERVER_STATUS_STARTING,
	engine.StatusRunning:  commonv1.ServerStatus_SERVER_STATUS_RUNNING,
	engine.StatusStopping: commonv1.ServerStatus_SERVER_STATUS_STOPPING,
	engine.StatusCrashed:  commonv1.ServerStatus_SERVER_STATUS_CRASHED,
}

var healths = map[engine.Health]commonv1.HealthStatus{
	engine.HealthUnknown: commonv1.HealthStatus_HEALTH_STATUS_UNKNOWN,
	engine.HealthOK:      commonv1.HealthStatus_HEALTH_STATUS_OK,
	engine.HealthError:   commonv1.HealthStatus_HEALTH_STATUS_ERROR,
}

func fromInfo(in engine.Info) *diffusionv1.DiffusionInfo {
	out := &diffusionv1.DiffusionInfo{
		Samplers:          slices.Clone(imagereq.Samplers),
		Status:            statuses[in.Status],
		Health:            healths[in.Health],
		Busy:              in.Busy,
		Pid:               int32(in.PID),
		Port:              int32(in.Port),
		ModelId:           in.ModelID,
		Config:            fromConfig(in.Config, in.Port),
		BinaryPath:        in.Binary,
		DemoEngine:        in.Demo,
		UnavailableReason: in.Unavailable,
		LastError:         in.LastError,
	}
	if !in.StartedAt.IsZero() {
		out.StartedAt = timestamppb.New(in.StartedAt)
	}
	if in.Current != nil {
		out.Current = fromProgress(*in.Current)
	}
	return out
}

var stages = map[engine.Stage]diffusionv1.Stage{
	engine.StageQueued:   diffusionv1.Stage_STAGE_QUEUED,
	engine.StageLoading:  diffusionv1.Stage_STAGE_LOADING,
	engine.StageEncoding: diffusionv1.Stage_STAGE_ENCODING,
	engine.StageSampling: diffusionv1.Stage_STAGE_SAMPLING,
	engine.StageDecoding: diffusionv1.Stage_STAGE_DECODING,
	engine.StageDone:     diffusionv1.Stage_STAGE_DONE,
}

func fromProgress(p engine.Progress) *diffusionv1.Progress {
	return &diffusionv1.Progress{
		Stage:          stages[p.Stage],
		Step:           int32(p.Step),
		TotalSteps:     int32(p.TotalSteps),
		Percent:        p.Percent,
		StagePercent:   p.StagePercent,
		ElapsedMs:      p.Elapsed.Milliseconds(),
		StepsPerSecond: p.StepsPerSecond,
		Message:        p.Message,
	}
}

var eventTypes = map[engine.EventType]diffusionv1.DiffusionEventType{
	engine.EventStarted:            diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_STARTED,
	engine.EventStopped:            diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_STOPPED,
	engine.EventCrashed:            diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_CRASHED,
	engine.EventGenerationStarted:  diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_GENERATION_STARTED,
	engine.EventGenerationFinished: diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_GENERATION_FINISHED,
}

func fromEvent(ev engine.Event) *diffusionv1.WatchInfoResponse {
	out := &diffusionv1.WatchInfoResponse{
		Type:    eventTypes[ev.Type],
		Time:    timestamppb.New(ev.Time),
		Info:    fromInfo(ev.Info),
		Message: ev.Message,
	}
	if ev.Exit != nil {
		out.Exit = &commonv1.ProcessExit{ExitCode: int32(ev.Exit.Code), Signal: ev.Exit.Signal, Time: timestamppb.New(ev.Exit.Time)}
	}
	return out
}

var levels = map[sdprogress.Level]commonv1.LogLevel{
	sdprogress.LevelDebug: commonv1.LogLevel_LOG_LEVEL_DEBUG,
	sdprogress.LevelInfo:  commonv1.LogLevel_LOG_LEVEL_INFO,
	sdprogress.LevelWarn:  commonv1.LogLevel_LOG_LEVEL_WARN,
	sdprogress.LevelError: commonv1.LogLevel_LOG_LEVEL_ERROR,
}

var logStreams = map[engine.Stream]commonv1.LogStream{
	engine.StreamService: commonv1.LogStream_LOG_STREAM_UNSPECIFIED,
	engine.StreamStdout:  commonv1.LogStream_LOG_STREAM_STDOUT,
	engine.StreamStderr:  commonv1.LogStream_LOG_STREAM_STDERR,
}

func fromLogLine(l engine.LogLine, seq uint64) *commonv1.LogLine {
	return &commonv1.LogLine{
		Time:    timestamppb.New(l.Time),
		Level:   levels[l.Level],
		Message: l.Message,
		Raw:     l.Raw,
		Stream:  logStreams[l.Stream],
		Seq:     seq,
	}
}

func nowPB() *timestamppb.Timestamp { return timestamppb.Now() }
