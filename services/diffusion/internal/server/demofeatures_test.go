package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

// The demo stand-in (no stable-diffusion.cpp configured) runs batches but says, in GetInfo and
// in a FailedPrecondition, that it writes no previews and cannot edit.
func TestDemoEngineBatchesAndSaysWhatItCannotDo(t *testing.T) {
	for _, mode := range realModes {
		t.Run(modeName(mode), func(t *testing.T) {
			s := startService(t, nil)
			info := s.start(t, mode)
			if c := info.GetCapabilities(); c.GetEdits() || len(c.GetPreviewMethods()) != 0 || c.GetMaxBatch() != 8 || !strings.Contains(c.GetLimitations(), "demo engine") {
				t.Fatalf("demo capabilities %v", c)
			}
			p := fox(64, 64, 2)
			p.N = proto.Int32(2)
			g := generate(context.Background(), s.client, p, nil)
			if g.err != nil || len(g.result.GetBatch()) != 1 || g.result.Batch[0].Seed != 43 || samePixels(t, g.result.Png, g.result.Batch[0].Png) {
				t.Fatalf("demo batch: %v %v", g.err, g.result.GetBatch())
			}
			g = generate(context.Background(), s.client, &diffusionv1.ImageParams{Prompt: "x", InitImage: gradient(t, 64, 64)}, nil)
			if code(g.err) != codes.FailedPrecondition || !strings.Contains(g.err.Error(), "image edits are not supported") {
				t.Errorf("demo edit: %v", g.err)
			}
		})
	}
}
