package server

import (
	"google.golang.org/protobuf/types/known/timestamppb"
	"slices"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/enginepb"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/logstream"
	"github.com/genailab/genailab/pkg/supervisor"
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

func fromInfo(in engine.Info) *diffusionv1.DiffusionInfo {
	out := &diffusionv1.DiffusionInfo{
		Samplers:          slices.Clone(imagereq.Samplers),
		Status:            enginepb.Status(in.Status),
		Health:            enginepb.Health(in.Health),
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
	if c := in.Capabilities; c.MaxBatch > 0 {
		out.Capabilities = &diffusionv1.Capabilities{Edits: c.Edits, Masks: c.Masks, MaxBatch: int32(c.MaxBatch), Limitations: c.Limitations}
		for _, m := range c.PreviewMethods {
			out.Capabilities.PreviewMethods = append(out.Capabilities.PreviewMethods, imagereq.PreviewMethodProto(m))
		}
	}
	return out
}

var stages = map[sdprogress.Stage]diffusionv1.Stage{
	sdprogress.StageQueued:   diffusionv1.Stage_STAGE_QUEUED,
	sdprogress.StageLoading:  diffusionv1.Stage_STAGE_LOADING,
	sdprogress.StageEncoding: diffusionv1.Stage_STAGE_ENCODING,
	sdprogress.StageSampling: diffusionv1.Stage_STAGE_SAMPLING,
	sdprogress.StageDecoding: diffusionv1.Stage_STAGE_DECODING,
	sdprogress.StageDone:     diffusionv1.Stage_STAGE_DONE,
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
		ImageIndex:     int32(p.ImageIndex),
		ImageCount:     int32(p.ImageCount),
		Preview:        fromPreview(p.Preview),
	}
}

func fromPreview(p *engine.Preview) *diffusionv1.Preview {
	if p == nil {
		return nil
	}
	return &diffusionv1.Preview{Png: p.PNG, Step: int32(p.Step), Width: int32(p.Width), Height: int32(p.Height), ImageIndex: int32(p.ImageIndex)}
}

// fromResult is the finished image or batch; its params echo the request resolved, without
// the uploaded image and mask.
func fromResult(res engine.Result, p imagereq.Params) *diffusionv1.ImageResult {
	out := &diffusionv1.ImageResult{
		Png:         res.PNG,
		Seed:        res.Seed,
		Width:       int32(res.Width),
		Height:      int32(res.Height),
		TimeTakenMs: res.TimeTaken.Milliseconds(),
		Params:      imagereq.WithoutUploads(imagereq.ToProto(p)),
		DemoEngine:  res.Demo,
	}
	for _, im := range res.Batch {
		out.Batch = append(out.Batch, &diffusionv1.BatchImage{Png: im.PNG, Seed: im.Seed, Width: int32(res.Width), Height: int32(res.Height)})
	}
	return out
}

// eventTypes maps the engine's event kinds (see package engine) to the contract's types,
// which have no restarted or gave-up of their own.
var eventTypes = map[supervisor.EventKind]diffusionv1.DiffusionEventType{
	supervisor.EventReady:          diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_STARTED,
	supervisor.EventRestarted:      diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_STARTED,
	supervisor.EventStopped:        diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_STOPPED,
	supervisor.EventCrashed:        diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_CRASHED,
	supervisor.EventGaveUp:         diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_CRASHED,
	engine.EventGenerationStarted:  diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_GENERATION_STARTED,
	engine.EventGenerationFinished: diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_GENERATION_FINISHED,
}

func fromEvent(ev engine.Event) *diffusionv1.WatchInfoResponse {
	return &diffusionv1.WatchInfoResponse{
		Type:    eventTypes[ev.Type],
		Time:    timestamppb.New(ev.Time),
		Info:    fromInfo(ev.Info),
		Message: ev.Message,
		Exit:    enginepb.Exit(ev.Exit),
	}
}

var levels = map[sdprogress.Level]commonv1.LogLevel{
	sdprogress.LevelDebug: commonv1.LogLevel_LOG_LEVEL_DEBUG,
	sdprogress.LevelInfo:  commonv1.LogLevel_LOG_LEVEL_INFO,
	sdprogress.LevelWarn:  commonv1.LogLevel_LOG_LEVEL_WARN,
	sdprogress.LevelError: commonv1.LogLevel_LOG_LEVEL_ERROR,
}

func fromLogLine(l engine.LogLine, seq uint64) *commonv1.LogLine {
	return &commonv1.LogLine{
		Time:    timestamppb.New(l.Time),
		Level:   levels[l.Level],
		Message: l.Message,
		Raw:     l.Raw,
		Stream:  logstream.StreamOf(l.Stream),
		Seq:     seq,
	}
}

func nowPB() *timestamppb.Timestamp { return timestamppb.Now() }
