package gateway

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
)

// modelRouter is a ModelServiceClient that sends each request to the service owning
// the request's model type: the LLM service for LLM models, the diffusion service for
// diffusion models. Each engine service owns the models of its type on its host.
type modelRouter struct {
	llm       modelsv1.ModelServiceClient
	diffusion modelsv1.ModelServiceClient
}

type typed interface{ GetType() modelsv1.ModelType }

func (m *modelRouter) route(req typed) (modelsv1.ModelServiceClient, error) {
	var c modelsv1.ModelServiceClient
	switch req.GetType() {
	case modelsv1.ModelType_MODEL_TYPE_LLM:
		c = m.llm
	case modelsv1.ModelType_MODEL_TYPE_DIFFUSION:
		c = m.diffusion
	default:
		return nil, grpcerr.Errorf(codes.InvalidArgument, "MODEL_TYPE_REQUIRED", "type is required: MODEL_TYPE_LLM or MODEL_TYPE_DIFFUSION (query parameter type=...)")
	}
	if c == nil {
		return nil, grpcerr.Errorf(codes.Unavailable, "NO_BACKEND", "no service configured for %s models", req.GetType())
	}
	return c, nil
}

func (m *modelRouter) ListModels(ctx context.Context, in *modelsv1.ListModelsRequest, opts ...grpc.CallOption) (*modelsv1.ListModelsResponse, error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.ListModels(ctx, in, opts...)
}

func (m *modelRouter) GetModel(ctx context.Context, in *modelsv1.GetModelRequest, opts ...grpc.CallOption) (*modelsv1.GetModelResponse, error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.GetModel(ctx, in, opts...)
}

func (m *modelRouter) DownloadModel(ctx context.Context, in *modelsv1.DownloadModelRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[modelsv1.DownloadModelResponse], error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.DownloadModel(ctx, in, opts...)
}

func (m *modelRouter) CancelDownload(ctx context.Context, in *modelsv1.CancelDownloadRequest, opts ...grpc.CallOption) (*modelsv1.CancelDownloadResponse, error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.CancelDownload(ctx, in, opts...)
}

func (m *modelRouter) DeleteModel(ctx context.Context, in *modelsv1.DeleteModelRequest, opts ...grpc.CallOption) (*modelsv1.DeleteModelResponse, error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.DeleteModel(ctx, in, opts...)
}

func (m *modelRouter) VerifyModel(ctx context.Context, in *modelsv1.VerifyModelRequest, opts ...grpc.CallOption) (*modelsv1.VerifyModelResponse, error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.VerifyModel(ctx, in, opts...)
}

func (m *modelRouter) GetStorageUsage(ctx context.Context, in *modelsv1.GetStorageUsageRequest, opts ...grpc.CallOption) (*modelsv1.GetStorageUsageResponse, error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.GetStorageUsage(ctx, in, opts...)
}

func (m *modelRouter) ListPresets(ctx context.Context, in *modelsv1.ListPresetsRequest, opts ...grpc.CallOption) (*modelsv1.ListPresetsResponse, error) {
	c, err := m.route(in)
	if err != nil {
		return nil, err
	}
	return c.ListPresets(ctx, in, opts...)
}
