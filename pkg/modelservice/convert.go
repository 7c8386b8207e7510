package modelservice

import (
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	"github.com/genailab/genailab/pkg/modelstore"
)

func protoType(t modelstore.Type) modelsv1.ModelType {
	switch t {
	case modelstore.TypeLLM:
		return modelsv1.ModelType_MODEL_TYPE_LLM
	case modelstore.TypeDiffusion:
		return modelsv1.ModelType_MODEL_TYPE_DIFFUSION
	}
	return modelsv1.ModelType_MODEL_TYPE_UNSPECIFIED
}

func u32(v uint64) uint32 {
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

func u64(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

func toModel(r *modelstore.Record, inUse bool) *modelsv1.Model {
	m := &modelsv1.Model{
		Id:           r.ID,
		Name:         r.Name,
		Type:         protoType(r.Type),
		SourceUrl:    r.SourceURL,
		DownloadedAt: timestamppb.New(r.DownloadedAt),
		SizeBytes:    u64(r.Size()),
		InUse:        inUse,
		PresetId:     r.PresetID,
	}
	for _, f := range r.Files {
		m.Files = append(m.Files, &modelsv1.ModelFile{
			Component: f.Component, Name: f.Name, SizeBytes: u64(f.Size), Sha256: f.SHA256, SourceUrl: f.URL,
		})
	}
	if g := r.GGUF; g != nil {
		m.Gguf = &modelsv1.GGUFMetadata{
			Architecture:        g.Architecture,
			Name:                g.Name,
			BlockCount:          u32(g.BlockCount),
			ContextLength:       u32(g.ContextLength),
			EmbeddingLength:     u32(g.EmbeddingLength),
			HeadCount:           u32(g.HeadCount),
			HeadCountKv:         u32(g.HeadCountKV),
			KeyLength:           g.KeyLength,
			ValueLength:         g.ValueLength,
			FileType:            g.FileType,
			ParameterCount:      g.ParameterCount,
			TensorDataSizeBytes: g.TensorDataSize,
			FeedForwardLength:   u32(g.FeedForwardLength),
			VocabSize:           u32(g.VocabSize),
			ShardCount:          u32(uint64(max(g.SplitCount, 0))),
		}
	}
	return m
}

func toProgress(p modelstore.Progress) *modelsv1.DownloadProgress {
	eta := int64(-1)
	if p.ETA >= 0 {
		eta = p.ETA.Milliseconds()
	}
	return &modelsv1.DownloadProgress{
		DownloadId:      p.ModelID,
		ModelId:         p.ModelID,
		Component:       p.Component,
		File:            p.File,
		DownloadedBytes: u64(p.BytesDone),
		TotalBytes:      u64(p.BytesTotal),
		BytesPerSecond:  p.BytesPerSecond,
		EtaMs:           eta,
		ComponentIndex:  int32(p.ComponentIndex),
		ComponentCount:  int32(p.ComponentCount),
	}
}

func toPart(component string, src *modelsv1.ModelSource) (modelstore.Part, error) {
	if src == nil {
		return modelstore.Part{}, fmt.Errorf("%w: component %q has no source", modelstore.ErrInvalidArgument, component)
	}
	p := modelstore.Part{Component: component, SHA256: src.GetSha256()}
	switch s := src.GetSource().(type) {
	case *modelsv1.ModelSource_Url:
		p.URL = s.Url
	case *modelsv1.ModelSource_HuggingFace:
		p.HF = &modelstore.HFFile{Repo: s.HuggingFace.GetRepo(), File: s.HuggingFace.GetFile(), Revision: s.HuggingFace.GetRevision()}
	default:
		return modelstore.Part{}, fmt.Errorf("%w: component %q: source needs a url or a hugging_face file", modelstore.ErrInvalidArgument, component)
	}
	if p.URL == "" && p.HF == nil {
		return modelstore.Part{}, fmt.Errorf("%w: component %q: empty url", modelstore.ErrInvalidArgument, component)
	}
	return p, nil
}

func toPreset(p modelstore.Preset) *modelsv1.Preset {
	out := &modelsv1.Preset{
		Id: p.ID, Name: p.Name, Type: protoType(p.Type), Description: p.Description,
		SizeBytes: u64(p.SizeBytes), Recommended: map[string]string{},
	}
	for _, part := range p.Parts {
		out.Components = append(out.Components, &modelsv1.ComponentSource{
			Component: part.Component,
			Source: &modelsv1.ModelSource{
				Source: &modelsv1.ModelSource_HuggingFace{HuggingFace: &modelsv1.HuggingFaceSource{
					Repo: part.HF.Repo, File: part.HF.File, Revision: part.HF.Revision,
				}},
				Sha256: part.SHA256,
			},
		})
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	if l := p.LLM; l != nil {
		out.Recommended["context_size"] = strconv.Itoa(l.ContextSize)
		out.Recommended["gpu_layers"] = strconv.Itoa(l.GPULayers)
		out.Recommended["temperature"] = f(l.Temperature)
	}
	if d := p.Diffusion; d != nil {
		out.Recommended["width"] = strconv.Itoa(d.Width)
		out.Recommended["height"] = strconv.Itoa(d.Height)
		out.Recommended["steps"] = strconv.Itoa(d.Steps)
		out.Recommended["cfg_scale"] = f(d.CFGScale)
		out.Recommended["sampler"] = d.Sampler
	}
	return out
}

func toFileCheck(c modelstore.FileCheck) *modelsv1.FileCheck {
	fc := &modelsv1.FileCheck{
		Name: c.Name, Ok: c.OK, ExpectedSha256: c.ExpectedSHA256, ActualSha256: c.ActualSHA256,
		ExpectedSizeBytes: u64(c.ExpectedSize), ActualSizeBytes: u64(c.ActualSize),
	}
	switch {
	case c.Missing:
		fc.Problem = "file is missing"
	case c.ActualSize != c.ExpectedSize:
		fc.Problem = fmt.Sprintf("size is %d bytes, recorded %d", c.ActualSize, c.ExpectedSize)
	case !c.OK:
		fc.Problem = "sha256 differs from the record"
	}
	return fc
}
