package modelservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/pkg/modelstore"
)

// Server implements modelsv1.ModelServiceServer for the models of one type.
type Server struct {
	modelsv1.UnimplementedModelServiceServer
	store *modelstore.Store
	typ   modelsv1.ModelType
	log   *slog.Logger
}

// New serves store; the store's type is the type this server answers for.
func New(store *modelstore.Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{store: store, typ: protoType(store.Type()), log: log}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { modelsv1.RegisterModelServiceServer(r, s) }

// checkType refuses a request for another type. When required is false an
// unspecified type means this server's.
func (s *Server) checkType(t modelsv1.ModelType, required bool) error {
	if t == s.typ || (!required && t == modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED) {
		return nil
	}
	if t == modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED {
		return grpcerr.Invalidf("type is required (this service serves %s models)", s.store.Type())
	}
	return grpcerr.Invalidf("this service serves %s models, not %s", s.store.Type(), t)
}

// ListModels implements ModelService.
func (s *Server) ListModels(ctx context.Context, req *modelsv1.ListModelsRequest) (*modelsv1.ListModelsResponse, error) {
	if err := s.checkType(req.GetType(), true); err != nil {
		return nil, toStatus(err)
	}
	recs, err := s.store.List(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &modelsv1.ListModelsResponse{}
	for _, r := range recs {
		out.Models = append(out.Models, toModel(r, s.store.InUse(r.ID)))
	}
	return out, nil
}

// GetModel implements ModelService.
func (s *Server) GetModel(ctx context.Context, req *modelsv1.GetModelRequest) (*modelsv1.GetModelResponse, error) {
	if err := s.checkType(req.GetType(), false); err != nil {
		return nil, toStatus(err)
	}
	r, err := s.store.Get(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &modelsv1.GetModelResponse{Model: toModel(r, s.store.InUse(r.ID))}, nil
}

// DownloadModel implements ModelService: progress messages (throttled by the
// store), then the model. A client that goes away cancels the download,
// which leaves its .partial files for a resume.
func (s *Server) DownloadModel(req *modelsv1.DownloadModelRequest, stream grpc.ServerStreamingServer[modelsv1.DownloadModelResponse]) error {
	if err := s.checkType(req.GetType(), false); err != nil {
		return toStatus(err)
	}
	dreq, err := s.downloadRequest(req)
	if err != nil {
		return toStatus(err)
	}
	var sendErr error
	rec, err := s.store.Download(stream.Context(), dreq, func(p modelstore.Progress) {
		if p.Done || sendErr != nil {
			return
		}
		sendErr = stream.Send(&modelsv1.DownloadModelResponse{
			Event: &modelsv1.DownloadModelResponse_Progress{Progress: toProgress(p)},
		})
	})
	if err != nil {
		return toStatus(err)
	}
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&modelsv1.DownloadModelResponse{
		Event: &modelsv1.DownloadModelResponse_Model{Model: toModel(rec, s.store.InUse(rec.ID))},
	})
}

func (s *Server) downloadRequest(req *modelsv1.DownloadModelRequest) (modelstore.Request, error) {
	given := 0
	if req.GetSource() != nil {
		given++
	}
	if len(req.GetComponents()) > 0 {
		given++
	}
	if req.GetPresetId() != "" {
		given++
	}
	if given != 1 {
		return modelstore.Request{}, grpcerr.Invalidf("give exactly one of source, components or preset_id")
	}
	out := modelstore.Request{ID: req.GetId(), Name: req.GetName(), Token: req.GetHuggingFaceToken()}
	switch {
	case req.GetSource() != nil:
		p, err := toPart(modelstore.ComponentModel, req.GetSource())
		if err != nil {
			return out, err
		}
		out.Parts = []modelstore.Part{p}
	case len(req.GetComponents()) > 0:
		for _, c := range req.GetComponents() {
			p, err := toPart(c.GetComponent(), c.GetSource())
			if err != nil {
				return out, err
			}
			out.Parts = append(out.Parts, p)
		}
	default:
		p, ok := modelstore.PresetByID(req.GetPresetId())
		if !ok {
			return out, fmt.Errorf("%w: preset %q", modelstore.ErrNotFound, req.GetPresetId())
		}
		if p.Type != s.store.Type() {
			return out, grpcerr.Invalidf("preset %q is a %s model; this service serves %s models", p.ID, p.Type, s.store.Type())
		}
		pr := p.Request()
		out.Parts, out.PresetID = pr.Parts, p.ID
		if out.ID == "" {
			out.ID = pr.ID
		}
		if out.Name == "" {
			out.Name = pr.Name
		}
	}
	return out, nil
}

// CancelDownload implements ModelService. The download id is the model id.
func (s *Server) CancelDownload(ctx context.Context, req *modelsv1.CancelDownloadRequest) (*modelsv1.CancelDownloadResponse, error) {
	if err := s.checkType(req.GetType(), false); err != nil {
		return nil, toStatus(err)
	}
	err := s.store.CancelDownload(ctx, req.GetDownloadId())
	if errors.Is(err, modelstore.ErrNoDownload) {
		return &modelsv1.CancelDownloadResponse{Cancelled: false}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &modelsv1.CancelDownloadResponse{Cancelled: true}, nil
}

// DeleteModel implements ModelService.
func (s *Server) DeleteModel(ctx context.Context, req *modelsv1.DeleteModelRequest) (*modelsv1.DeleteModelResponse, error) {
	if err := s.checkType(req.GetType(), false); err != nil {
		return nil, toStatus(err)
	}
	freed, err := s.store.Delete(ctx, req.GetId(), req.GetForce())
	if err != nil {
		return nil, toStatus(err)
	}
	return &modelsv1.DeleteModelResponse{FreedBytes: u64(freed)}, nil
}

// VerifyModel implements ModelService.
func (s *Server) VerifyModel(ctx context.Context, req *modelsv1.VerifyModelRequest) (*modelsv1.VerifyModelResponse, error) {
	if err := s.checkType(req.GetType(), false); err != nil {
		return nil, toStatus(err)
	}
	rep, err := s.store.Verify(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &modelsv1.VerifyModelResponse{Ok: rep.OK}
	for _, f := range rep.Files {
		out.Files = append(out.Files, toFileCheck(f))
	}
	return out, nil
}

// GetStorageUsage implements ModelService.
func (s *Server) GetStorageUsage(ctx context.Context, req *modelsv1.GetStorageUsageRequest) (*modelsv1.GetStorageUsageResponse, error) {
	if err := s.checkType(req.GetType(), true); err != nil {
		return nil, toStatus(err)
	}
	u, err := s.store.StorageUsage(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &modelsv1.GetStorageUsageResponse{UsedBytes: u64(u.ModelBytes), PartialBytes: u64(u.PartialBytes), FreeBytes: u.FreeBytes}
	for _, m := range u.Models {
		out.Models = append(out.Models, &modelsv1.ModelUsage{Id: m.ID, SizeBytes: u64(m.Bytes)})
	}
	return out, nil
}

// ListPresets implements ModelService.
func (s *Server) ListPresets(ctx context.Context, req *modelsv1.ListPresetsRequest) (*modelsv1.ListPresetsResponse, error) {
	if err := s.checkType(req.GetType(), true); err != nil {
		return nil, toStatus(err)
	}
	out := &modelsv1.ListPresetsResponse{}
	for _, p := range modelstore.Presets(s.store.Type()) {
		out.Presets = append(out.Presets, toPreset(p))
	}
	return out, nil
}
