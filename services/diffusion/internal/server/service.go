package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	commonv1 "github.com/genailab/genailab/gen/common/v1"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/logstream"
	"github.com/genailab/genailab/services/diffusion/internal/engine"
)

// Service implements genailab.diffusion.v1.DiffusionService over one engine.
type Service struct {
	diffusionv1.UnimplementedDiffusionServiceServer

	eng    *engine.Engine
	models *models
	log    *slog.Logger
	// defaultModel is used by a Start that names no model.
	defaultModel string
	// metrics are the Prometheus series (metrics.go).
	metrics *metrics
}

// NewService returns the gRPC service.
func NewService(eng *engine.Engine, m *models, log *slog.Logger) *Service {
	return &Service{eng: eng, models: m, log: log, metrics: newMetrics()}
}

// Register adds the service to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	diffusionv1.RegisterDiffusionServiceServer(r, s)
	commonv1.RegisterLogServiceServer(r, logstream.NewServer(s.logs()))
}

// logs is the engine's log as genailab.common.v1.LogService serves it.
func (s *Service) logs() logstream.Source[engine.LogLine] {
	return logstream.Source[engine.LogLine]{Subscribe: s.eng.Logs().Subscribe, Line: fromLogLine}
}

// Start resolves the model and starts the engine.
func (s *Service) Start(ctx context.Context, req *diffusionv1.StartRequest) (*diffusionv1.StartResponse, error) {
	cfg, err := s.config(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	in, err := s.eng.Start(ctx, cfg)
	if err != nil {
		return nil, toStatus(err)
	}
	return &diffusionv1.StartResponse{Info: fromInfo(in)}, nil
}

func (s *Service) config(ctx context.Context, req *diffusionv1.StartRequest) (engine.Config, error) {
	c := req.GetConfig()
	id := c.GetModelId()
	if id == "" {
		id = s.defaultModel
	}
	if id == "" {
		return engine.Config{}, fmt.Errorf("%w: config.model_id is required (the service has no -default-model)", imagereq.ErrInvalid)
	}
	if c.GetThreads() < 0 || c.GetThreads() > 1024 {
		return engine.Config{}, fmt.Errorf("%w: config.threads must be within 0-1024, got %d", imagereq.ErrInvalid, c.GetThreads())
	}
	if c.GetPort() < 0 || c.GetPort() > 65535 {
		return engine.Config{}, fmt.Errorf("%w: config.port must be within 0-65535, got %d", imagereq.ErrInvalid, c.GetPort())
	}
	if req.GetReadyTimeoutMs() < 0 {
		return engine.Config{}, fmt.Errorf("%w: ready_timeout_ms must not be negative", imagereq.ErrInvalid)
	}
	model, err := s.models.resolve(ctx, id)
	if err != nil {
		return engine.Config{}, err
	}
	return engine.Config{
		Mode:         toMode(c.GetMode()),
		ModelID:      id,
		Model:        model,
		Threads:      int(c.GetThreads()),
		Port:         int(c.GetPort()),
		Memory:       toMemory(c),
		ReadyTimeout: time.Duration(req.GetReadyTimeoutMs()) * time.Millisecond,
	}, nil
}

// Stop cancels a generation in progress and stops the engine.
func (s *Service) Stop(ctx context.Context, _ *diffusionv1.StopRequest) (*diffusionv1.StopResponse, error) {
	in, err := s.eng.Stop(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &diffusionv1.StopResponse{Info: fromInfo(in)}, nil
}

// GetInfo returns a snapshot.
func (s *Service) GetInfo(context.Context, *diffusionv1.GetInfoRequest) (*diffusionv1.GetInfoResponse, error) {
	return &diffusionv1.GetInfoResponse{Info: fromInfo(s.eng.Info())}, nil
}

// WatchInfo sends the snapshot, then every lifecycle event.
func (s *Service) WatchInfo(_ *diffusionv1.WatchInfoRequest, stream grpc.ServerStreamingServer[diffusionv1.WatchInfoResponse]) error {
	cur := s.eng.Events().Subscribe(0) // before the snapshot, so that nothing falls between
	if err := stream.Send(&diffusionv1.WatchInfoResponse{
		Type: diffusionv1.DiffusionEventType_DIFFUSION_EVENT_TYPE_SNAPSHOT,
		Time: nowPB(),
		Info: fromInfo(s.eng.Info()),
	}); err != nil {
		return err
	}
	for {
		ent, err := cur.Next(stream.Context())
		if errors.Is(err, logring.ErrClosed) {
			return nil
		}
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(fromEvent(ent.Value)); err != nil {
			return err
		}
	}
}

// GenerateImage streams progress, then the result.
func (s *Service) GenerateImage(req *diffusionv1.GenerateImageRequest, stream grpc.ServerStreamingServer[diffusionv1.GenerateImageResponse]) error {
	box := newProgressBox()
	type outcome struct {
		res    engine.Result
		params imagereq.Params
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		res, p, err := s.generate(stream.Context(), imagereq.FromProto(req.GetParams()), box.put)
		done <- outcome{res, p, err}
	}()
	send := func() error {
		for _, p := range box.take() {
			if err := stream.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Progress{Progress: fromProgress(p)}}); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		select {
		case <-box.notify:
			if err := send(); err != nil {
				return err // the client is gone: its context cancels the generation
			}
		case o := <-done:
			if o.err != nil {
				return toStatus(o.err)
			}
			if err := send(); err != nil {
				return err
			}
			return stream.Send(&diffusionv1.GenerateImageResponse{Event: &diffusionv1.GenerateImageResponse_Result{Result: fromResult(o.res, o.params)}})
		}
	}
}

// generate is the one code path of both the gRPC API and the seed HTTP wrapper: validate,
// resolve defaults and the seed, generate.
func (s *Service) generate(ctx context.Context, r imagereq.Request, sink engine.ProgressFunc) (engine.Result, imagereq.Params, error) {
	p, err := imagereq.Resolve(r, nil)
	if err != nil {
		return engine.Result{}, imagereq.Params{}, err
	}
	sink, observed := s.metrics.observe(s.eng.Info().ModelID, p, sink)
	res, err := s.eng.Generate(ctx, p, sink)
	observed(res, err)
	return res, p, err
}

// CancelGeneration cancels the generation in progress.
func (s *Service) CancelGeneration(ctx context.Context, _ *diffusionv1.CancelGenerationRequest) (*diffusionv1.CancelGenerationResponse, error) {
	ok, err := s.eng.CancelGeneration(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &diffusionv1.CancelGenerationResponse{Cancelled: ok}, nil
}

// StreamLogs implements DiffusionService: genailab.common.v1.LogService's StreamLogs
// (package logstream), in this package's messages.
func (s *Service) StreamLogs(req *diffusionv1.StreamLogsRequest, stream grpc.ServerStreamingServer[diffusionv1.StreamLogsResponse]) error {
	return logstream.Stream(stream.Context(), s.logs(), &commonv1.StreamLogsRequest{TailLines: req.TailLines, Follow: req.GetFollow()},
		func(m *commonv1.StreamLogsResponse) error {
			return stream.Send(&diffusionv1.StreamLogsResponse{Line: m.GetLine(), Missed: m.GetMissed()})
		})
}

// autostart starts the engine with the default model and mode (Options.Autostart). A failure
// is logged, not fatal: the service still answers, and GetInfo shows the error.
func (s *Service) autostart(ctx context.Context, opts Options) {
	mode, _ := parseMode(opts.DefaultMode) // checked by Options.Validate
	in, err := s.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{Mode: mode, ModelId: opts.DefaultModel}})
	if err != nil {
		s.log.Error("autostart of the diffusion engine failed; it stays stopped", "model", opts.DefaultModel, "mode", opts.DefaultMode, "err", err)
		return
	}
	s.log.Info("diffusion engine started", "model", in.GetInfo().GetModelId(), "mode", opts.DefaultMode,
		"binary", in.GetInfo().GetBinaryPath(), "demo", in.GetInfo().GetDemoEngine())
}
