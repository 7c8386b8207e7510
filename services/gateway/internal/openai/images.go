package openai

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/httperr"
	"github.com/genailab/genailab/pkg/imagereq"
)

// imagesRequest is OpenAI's image generation request, with stable-diffusion extensions.
type imagesRequest struct {
	Prompt         string `json:"prompt"`
	Model          string `json:"model"`
	N              *int   `json:"n"`
	Size           string `json:"size"`
	ResponseFormat string `json:"response_format"`
	// Stream answers server-sent events (images_stream.go) with PartialImages previews
	// (0-3) before each image.
	Stream        bool `json:"stream"`
	PartialImages *int `json:"partial_images"`
	// Ignored OpenAI fields that SDKs may send.
	Quality string `json:"quality"`
	Style   string `json:"style"`
	User    string `json:"user"`
	// Extensions: the seed's parameters. Steps is a pointer so that "steps": 0 (refused)
	// differs from no steps (the default).
	NegativePrompt string   `json:"negative_prompt"`
	Steps          *int32   `json:"steps"`
	CfgScale       *float32 `json:"cfg_scale"`
	Seed           *int64   `json:"seed"`
	Sampler        string   `json:"sampler"`
}

// appendImagesResponse appends OpenAI's images response, {"created": <unix seconds>,
// "data": [{"b64_json": <PNG in base64>}, ...]} and a newline, with each PNG base64-encoded
// straight into the body: encoding/json would make each string first and copy it again,
// checking every byte for escapes (the base64 alphabet needs none): about three times
// as long (BenchmarkImagesResponse).
func appendImagesResponse(dst []byte, created int64, pngs [][]byte) []byte {
	n := len(dst) + 64
	for _, png := range pngs {
		n += base64.StdEncoding.EncodedLen(len(png)) + 16
	}
	if cap(dst) < n {
		dst = append(make([]byte, 0, n), dst...)
	}
	dst = append(dst, `{"created":`...)
	dst = strconv.AppendInt(dst, created, 10)
	dst = append(dst, `,"data":[`...)
	for i, png := range pngs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"b64_json":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, png)
		dst = append(dst, `"}`...)
	}
	return append(dst, "]}\n"...)
}

// parseSize parses OpenAI's "WxH". No size leaves both unset (imagereq's default); the
// numbers themselves, 0 included, are imagereq's to check.
func parseSize(s string) (*int32, *int32, error) {
	if s == "" {
		return nil, nil, nil
	}
	w, h, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		return nil, nil, fmt.Errorf("size %q: want WIDTHxHEIGHT, e.g. 512x512", s)
	}
	wi, err1 := strconv.ParseInt(w, 10, 32)
	hi, err2 := strconv.ParseInt(h, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("size %q: want WIDTHxHEIGHT with whole numbers, e.g. 512x512", s)
	}
	return proto.Int32(int32(wi)), proto.Int32(int32(hi)), nil
}

// images generates images through the orchestrator.
func (h *Handler) images(w http.ResponseWriter, r *http.Request) {
	if h.orch == nil {
		writeError(w, unavailable("no orchestrator configured behind this gateway"))
		return
	}
	var req imagesRequest
	if !decode(w, r, &req) {
		return
	}
	width, height, err := parseSize(req.Size)
	if err != nil {
		writeError(w, httperr.Invalid(err.Error()))
		return
	}
	h.runImages(w, r, imageJob{
		n: req.N, responseFormat: req.ResponseFormat, stream: req.Stream, partialImages: req.PartialImages, seed: req.Seed,
		events: generationEvents,
		params: &diffusionv1.ImageParams{Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Width: width, Height: height,
			Steps: req.Steps, CfgScale: req.CfgScale, Sampler: req.Sampler},
	})
}

// imageJob is a generation or edit request as the surface read it, not yet checked.
type imageJob struct {
	n              *int
	responseFormat string
	stream         bool
	partialImages  *int
	seed           *int64
	events         eventTypes
	// params is the request without its seed (seed is the first image's).
	params *diffusionv1.ImageParams
}

// runImages checks a request once, before anything is called (n images never cost an
// offload only to be refused), then answers it: as server-sent events with "stream",
// else as OpenAI's images response.
func (h *Handler) runImages(w http.ResponseWriter, r *http.Request, g imageJob) {
	switch g.responseFormat {
	case "", "b64_json":
	default:
		writeError(w, httperr.Invalid(fmt.Sprintf("response_format %q is not supported: use b64_json", g.responseFormat)))
		return
	}
	partials, err := partialImages(g.partialImages, g.stream)
	if err != nil {
		writeError(w, httperr.Invalid(err.Error()))
		return
	}
	// n is the batch size, which the one image-request validator checks with the rest,
	// on exactly what the orchestrator will be sent.
	req := streamRequest{base: g.params, seed: g.seed, n: g.n, partials: partials, events: g.events}
	resolved, err := imagereq.Resolve(imagereq.FromProto(req.params()), nil)
	if err != nil {
		writeError(w, httperr.Invalid(err.Error()))
		return
	}
	req.size = fmt.Sprintf("%dx%d", resolved.Width, resolved.Height)
	if g.stream {
		h.streamImages(w, r, req)
		return
	}
	created := time.Now().Unix()
	var pngs [][]byte
	err = h.runJob(r, req, nil, func(img image) error {
		pngs = append(pngs, img.png)
		return nil
	})
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(appendImagesResponse(nil, created, pngs))
}
