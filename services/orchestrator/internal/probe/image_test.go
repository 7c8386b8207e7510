package probe

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
)

func TestSupportsFollowsTheEngineCapabilities(t *testing.T) {
	server := &diffusionv1.DiffusionInfo{Config: &diffusionv1.DiffusionConfig{Mode: diffusionv1.EngineMode_ENGINE_MODE_SERVER},
		Capabilities: &diffusionv1.Capabilities{MaxBatch: 8, Limitations: "sd-server has no previews"}}
	cli := &diffusionv1.DiffusionInfo{Capabilities: &diffusionv1.Capabilities{MaxBatch: 8, Edits: true, Masks: true,
		PreviewMethods: []diffusionv1.PreviewMethod{diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, diffusionv1.PreviewMethod_PREVIEW_METHOD_TAE, diffusionv1.PreviewMethod_PREVIEW_METHOD_VAE}}}
	edit := ImageOf(&diffusionv1.ImageParams{InitImage: []byte{1}, Mask: []byte{2}, N: proto.Int32(2),
		Preview: &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_TAE}})
	if edit != (Image{Width: 512, Height: 512, N: 2, Edit: true, Mask: true, Preview: "tae"}) {
		t.Fatalf("ImageOf: %+v", edit)
	}
	if err := Supports(cli, edit); err != nil {
		t.Errorf("cli: %v", err)
	}
	err := Supports(server, edit)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "tae previews are not available in server mode (sd-server has no previews)") {
		t.Errorf("server, previews: %v", err)
	}
	edit.Preview = ""
	if err := Supports(server, edit); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "image edits are not available in server mode") {
		t.Errorf("server, edit: %v", err)
	}
	if err := Supports(server, Image{Width: 64, Height: 64, N: 8}); err != nil {
		t.Errorf("server, batch: %v", err)
	}
	if err := Supports(cli, Image{Width: 64, Height: 64, N: 9}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "batches of 9 are not available (at most 8) in CLI mode") {
		t.Errorf("cli, batch of 9: %v", err)
	}
	if c := Capabilities(cli); c.Mode != "CLI" || strings.Join(c.PreviewMethods, ",") != "proj,tae,vae" || !c.Edits || !c.Masks || c.MaxBatch != 8 {
		t.Errorf("cli capabilities: %+v", c)
	}
	if err := Supports(&diffusionv1.DiffusionInfo{}, edit); err != nil {
		t.Errorf("an engine without capabilities (stopped) refuses itself: %v", err)
	}
}

func TestNeedsOfLeavesValuesOutOfRangeToValidation(t *testing.T) {
	proj := &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ}
	for _, c := range []struct {
		p    *diffusionv1.ImageParams
		want place.Needs
	}{
		{nil, place.Needs{}},
		{&diffusionv1.ImageParams{Prompt: "x"}, place.Needs{}},
		{&diffusionv1.ImageParams{Preview: proj, InitImage: []byte{1}, Mask: []byte{2}, N: proto.Int32(8)}, place.Needs{Preview: "proj", Edit: true, Mask: true, N: 8}},
		{&diffusionv1.ImageParams{Preview: &diffusionv1.PreviewOptions{Method: 7}, Mask: []byte{2}, N: proto.Int32(9)}, place.Needs{}},
		{&diffusionv1.ImageParams{N: proto.Int32(0)}, place.Needs{}},
	} {
		if got := NeedsOf(c.p); got != c.want {
			t.Errorf("NeedsOf(%v) = %+v, want %+v", c.p, got, c.want)
		}
	}
}
