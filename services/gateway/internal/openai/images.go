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
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
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

type imageData struct {
	B64JSON       string `json:"b64_json"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

type imagesResponse struct {
	Created int64       `json:"created"`
	Data    []imageData `json:"data"`
}

// MaxImages bounds n.
const MaxImages = 10

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

// images generates n images, one after another, through the orchestrator's seed contract.
func (h *Handler) images(w http.ResponseWriter, r *http.Request) {
	if h.orch == nil {
		writeError(w, unavailable("no orchestrator configured behind this gateway"))
		return
	}
	var req imagesRequest
	if !decode(w, r, &req) {
		return
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	if n < 1 || n > MaxImages {
		writeError(w, httperr.Invalid(fmt.Sprintf("n must be between 1 and %d, got %d", MaxImages, n)))
		return
	}
	switch req.ResponseFormat {
	case "", "b64_json":
	default:
		writeError(w, httperr.Invalid(fmt.Sprintf("response_format %q is not supported: use b64_json", req.ResponseFormat)))
		return
	}
	width, height, err := parseSize(req.Size)
	if err != nil {
		writeError(w, httperr.Invalid(err.Error()))
		return
	}
	// The one image-request validator, before anything is called: n images never cost an
	// offload only to be refused.
	check := &diffusionv1.ImageParams{Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Width: width, Height: height,
		Steps: req.Steps, CfgScale: req.CfgScale, Sampler: req.Sampler}
	if req.Seed != nil && *req.Seed >= 0 {
		last := *req.Seed + int64(n-1)
		check.Seed = &last
	}
	if err := imagereq.Validate(check); err != nil {
		writeError(w, httperr.Invalid(err.Error()))
		return
	}
	out := imagesResponse{Created: time.Now().Unix()}
	for i := 0; i < n; i++ {
		cr := &orchestratorv1.CreateImageRequest{
			Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Width: width, Height: height,
			Steps: req.Steps, CfgScale: req.CfgScale, Sampler: req.Sampler,
		}
		if req.Seed != nil && *req.Seed >= 0 {
			// Consecutive seeds, so that the n images differ and each is reproducible.
			s := *req.Seed + int64(i)
			cr.Seed = &s
		}
		res, err := h.orch.CreateImage(r.Context(), cr)
		if err != nil {
			writeGRPCError(w, err)
			return
		}
		out.Data = append(out.Data, imageData{B64JSON: base64.StdEncoding.EncodeToString(res.GetImage())})
	}
	writeJSON(w, out)
}
