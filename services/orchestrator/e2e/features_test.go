package e2e

// Issue 18 through the orchestrator's gRPC API on the real stack (llama-server, sd-cli or
// sd-server with the tiny model, every offload forced): previews, a batch and edits pass
// through the GenerateImage stream and the job, bad features are refused before anything is
// offloaded.

import (
	"bytes"
	"context"
	stdimage "image"
	"image/png"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// featureRun is what one GenerateImage stream brought.
type featureRun struct {
	jobID    string
	previews []*diffusionv1.Preview
	result   *diffusionv1.ImageResult
	err      error
}

func generateFeatures(s *stack, p *diffusionv1.ImageParams) featureRun {
	return generateRequest(s.orch, &orchestratorv1.GenerateImageRequest{Params: p})
}

// generateRequest runs one GenerateImage stream to its end.
func generateRequest(orch orchestratorv1.OrchestratorServiceClient, req *orchestratorv1.GenerateImageRequest) featureRun {
	var r featureRun
	stream, err := orch.GenerateImage(context.Background(), req)
	if err != nil {
		r.err = err
		return r
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return r
		}
		if err != nil {
			r.err = err
			return r
		}
		switch v := m.Payload.(type) {
		case *orchestratorv1.GenerateImageResponse_JobId:
			r.jobID = v.JobId
		case *orchestratorv1.GenerateImageResponse_Progress:
			if pv := v.Progress.GetPreview(); pv != nil {
				r.previews = append(r.previews, pv)
			}
		case *orchestratorv1.GenerateImageResponse_Result:
			r.result = v.Result
		}
	}
}

func pngOf(t *testing.T, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, stdimage.NewGray(stdimage.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPreviewsBatchesAndRefusalsThroughTheOrchestrator(t *testing.T) {
	s := newStack(t, stackOptions{Budget: 1})

	// Bad features: InvalidArgument with the reason, no job, no offload.
	before := len(s.events.all(""))
	for want, p := range map[string]*diffusionv1.ImageParams{
		"not a PNG or JPEG":    {Prompt: "x", InitImage: []byte("not an image")},
		"the mask is 128x64":   {Prompt: "x", InitImage: pngOf(t, 64, 64), Mask: pngOf(t, 128, 64)},
		"n must be within 1-8": {Prompt: "x", N: proto.Int32(9)},
	} {
		r := generateFeatures(s, p)
		if status.Code(r.err) != codes.InvalidArgument || !strings.Contains(r.err.Error(), want) || r.jobID != "" {
			t.Errorf("%s: %v (job %q)", want, r.err, r.jobID)
		}
	}
	if evs := s.events.all(""); len(evs) != before {
		t.Errorf("refused requests made events: %v", s.events.types("")[before:])
	}

	// Previews and a batch of 2, offloaded once.
	p := image(4)
	p.N = proto.Int32(2)
	p.Preview = &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ}
	r := generateFeatures(s, p)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.previews) == 0 || r.result == nil || len(r.result.Batch) != 1 || r.result.Batch[0].Seed != r.result.Seed+1 {
		t.Fatalf("%d previews, result %v", len(r.previews), r.result)
	}
	for _, pv := range r.previews {
		if _, err := png.Decode(bytes.NewReader(pv.Png)); err != nil || pv.Width > 256 {
			t.Fatalf("preview at step %d: %v (%dx%d)", pv.Step, err, pv.Width, pv.Height)
		}
	}
	s.events.wait(t, evRelDone, r.jobID, reloadWithin)
	offloads := 0
	for _, ty := range s.events.types(r.jobID) {
		if ty == evOffStart {
			offloads++
		}
	}
	if offloads != 1 {
		t.Errorf("a batch of 2 made %d offload cycles: %v", offloads, s.events.types(r.jobID))
	}
	job, err := s.orch.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: r.jobID, IncludeImage: true})
	if err != nil {
		t.Fatal(err)
	}
	if res := job.GetJob().GetResult(); !bytes.Equal(res.GetPng(), r.result.Png) || len(res.GetBatch()) != 1 || !bytes.Equal(res.Batch[0].GetPng(), r.result.Batch[0].Png) {
		t.Errorf("the job does not keep both images")
	}
	if pr := job.GetJob().GetProgress(); pr.GetPreview() != nil {
		t.Error("the job record keeps a preview image")
	}
}

// In server mode previews are refused with FailedPrecondition naming the mode, nothing
// offloaded for them; an edit runs (sd-server's img_gen takes the init image and mask).
func TestServerModeRefusesPreviewsBeforeAnyOffloadAndRunsEdits(t *testing.T) {
	s := newStack(t, stackOptions{Budget: 1, Mode: diffusionv1.EngineMode_ENGINE_MODE_SERVER})
	r := generateFeatures(s, &diffusionv1.ImageParams{Prompt: "x", Width: proto.Int32(64), Height: proto.Int32(64),
		Preview: &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ}})
	if status.Code(r.err) != codes.FailedPrecondition || !strings.Contains(r.err.Error(), "proj previews are not available") || !strings.Contains(r.err.Error(), "server mode") {
		t.Errorf("previews in server mode: %v", r.err)
	}
	if r.jobID != "" && s.events.has(evOffStart, r.jobID) {
		t.Errorf("offloaded for a refused request: %v", s.events.types(r.jobID))
	}
	e := generateFeatures(s, &diffusionv1.ImageParams{Prompt: "x", Steps: proto.Int32(2), InitImage: pngOf(t, 64, 64), Mask: pngOf(t, 64, 64)})
	if e.err != nil || e.result == nil || e.result.Width != 64 {
		t.Fatalf("edit in server mode: %v", e.err)
	}
	s.events.wait(t, evRelDone, e.jobID, reloadWithin)
	s.requireLLMHealthy()
}
