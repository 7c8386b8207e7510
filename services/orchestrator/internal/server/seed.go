package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
)

// CreateImage is the seed's synchronous contract. It runs the generation on the
// diffusion service and returns only the result.
func (s *Service) CreateImage(ctx context.Context, req *orchestratorv1.CreateImageRequest) (*orchestratorv1.CreateImageResponse, error) {
	if req.Seed != nil && *req.Seed > math.MaxUint32 {
		return nil, status.Errorf(codes.InvalidArgument, "seed must be at most %d (or negative for a random seed), got %d", uint64(math.MaxUint32), *req.Seed)
	}
	params := &diffusionv1.ImageParams{
		Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Width: req.Width, Height: req.Height,
		Steps: req.Steps, CfgScale: req.CfgScale, Seed: req.Seed, Sampler: req.Sampler,
	}
	res, err := s.generate(ctx, params, nil)
	if err != nil {
		return nil, grpcerr.Status(err)
	}
	return &orchestratorv1.CreateImageResponse{
		Image: res.Png, Format: "png", TimeTakenMs: uint32(min(res.TimeTakenMs, math.MaxUint32)),
		Seed: uint32(res.Seed), Width: res.Width, Height: res.Height,
	}, nil
}

// GetHealth is the seed's health check: ok, and whether an image is being generated.
func (s *Service) GetHealth(ctx context.Context, _ *orchestratorv1.GetHealthRequest) (*orchestratorv1.GetHealthResponse, error) {
	info, err := s.diffusion.GetInfo(ctx, &diffusionv1.GetInfoRequest{})
	if err != nil {
		return nil, grpcerr.Status(fmt.Errorf("ask diffusion service: %w", err))
	}
	return &orchestratorv1.GetHealthResponse{Status: "ok", Busy: info.GetInfo().GetBusy()}, nil
}

// generate runs one image on the diffusion service, passing progress to onProgress.
func (s *Service) generate(ctx context.Context, params *diffusionv1.ImageParams, onProgress func(*diffusionv1.Progress)) (*diffusionv1.ImageResult, error) {
	stream, err := s.diffusion.GenerateImage(ctx, &diffusionv1.GenerateImageRequest{Params: params})
	if err != nil {
		return nil, fmt.Errorf("generate on diffusion service: %w", err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.Internal, "diffusion service ended the stream without a result")
		}
		if err != nil {
			return nil, err
		}
		switch ev := msg.Event.(type) {
		case *diffusionv1.GenerateImageResponse_Progress:
			if onProgress != nil {
				onProgress(ev.Progress)
			}
		case *diffusionv1.GenerateImageResponse_Result:
			return ev.Result, nil
		}
	}
}
