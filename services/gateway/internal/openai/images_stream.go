package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/httperr"
	"github.com/genailab/genailab/pkg/imagereq"
)

// MaxPartialImages bounds partial_images, as OpenAI does (0-3).
const MaxPartialImages = 3

// eventTypes are the names of a stream's two events: generations and edits have their own.
type eventTypes struct{ partial, completed string }

var (
	generationEvents = eventTypes{partial: "image_generation.partial_image", completed: "image_generation.completed"}
	editEvents       = eventTypes{partial: "image_edit.partial_image", completed: "image_edit.completed"}
)

// partialImages checks partial_images: 0-3, and only with "stream": true (OpenAI's rule);
// left out it is 0.
func partialImages(p *int, stream bool) (int, error) {
	if p == nil {
		return 0, nil
	}
	if *p < 0 || *p > MaxPartialImages {
		return 0, fmt.Errorf("partial_images must be between 0 and %d, got %d", MaxPartialImages, *p)
	}
	if *p > 0 && !stream {
		return 0, fmt.Errorf("partial_images %d needs \"stream\": true", *p)
	}
	return *p, nil
}

// streamRequest is a validated request: n images of base (one batch), seeds from seed on
// (nil or negative: drawn), each preceded by up to partials partial images when streamed.
type streamRequest struct {
	base *diffusionv1.ImageParams
	seed *int64
	// n is the batch size as sent (nil: one image).
	n        *int
	partials int
	events   eventTypes
	// size is the images' resolved size, "WxH" (an edit's default is its image's).
	size string
}

// params are the image parameters the orchestrator is sent.
func (req streamRequest) params() *diffusionv1.ImageParams {
	p := proto.Clone(req.base).(*diffusionv1.ImageParams)
	if req.seed != nil && *req.seed >= 0 {
		p.Seed = proto.Int64(*req.seed)
	}
	if req.n != nil {
		p.N = proto.Int32(clampInt32(*req.n))
	}
	if req.partials > 0 {
		p.Preview = previewFor(p, req.partials)
	}
	return p
}

// imageEvent is OpenAI's partial_image and completed event (ImageGenPartialImageEvent,
// ImageGenCompletedEvent and their image_edit twins in the official SDKs).
type imageEvent struct {
	Type              string      `json:"type"`
	B64JSON           string      `json:"b64_json"`
	CreatedAt         int64       `json:"created_at"`
	Size              string      `json:"size"`
	Quality           string      `json:"quality"`
	Background        string      `json:"background"`
	OutputFormat      string      `json:"output_format"`
	PartialImageIndex *int        `json:"partial_image_index,omitempty"`
	Usage             *imageUsage `json:"usage,omitempty"`
}

// b64Key opens the event's b64_json string. A JSON string value cannot hold an unescaped
// quote, so its first occurrence in the event's JSON is the key itself.
var b64Key = []byte(`"b64_json":"`)

// json is the event's JSON with png as its b64_json (ev.B64JSON is ignored), encoded
// straight into place: the rest of the event is marshalled with an empty b64_json and the
// base64 inserted there, not made as a string first and then copied by encoding/json with
// an escape check per byte (BenchmarkImageEventJSON).
func (ev imageEvent) json(png []byte) []byte {
	ev.B64JSON = ""
	small := mustJSON(ev)
	i := bytes.Index(small, b64Key) + len(b64Key)
	out := make([]byte, 0, len(small)+base64.StdEncoding.EncodedLen(len(png)))
	out = append(out, small[:i]...)
	out = base64.StdEncoding.AppendEncode(out, png)
	return append(out, small[i:]...)
}

// imageUsage is the completed event's usage. stable-diffusion.cpp counts no tokens: the
// numbers are zero, as they are for OpenAI's own non-GPT image models.
type imageUsage struct {
	InputTokens        int64             `json:"input_tokens"`
	OutputTokens       int64             `json:"output_tokens"`
	TotalTokens        int64             `json:"total_tokens"`
	InputTokensDetails imageTokenDetails `json:"input_tokens_details"`
}

type imageTokenDetails struct {
	ImageTokens int64 `json:"image_tokens"`
	TextTokens  int64 `json:"text_tokens"`
}

// sse writes server-sent events: "event: TYPE" and one "data:" line of JSON each.
type sse struct {
	w       http.ResponseWriter
	flusher http.Flusher
}

func startSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	return &sse{w: w, flusher: f}
}

func (s *sse) flush() {
	if s.flusher != nil {
		s.flusher.Flush()
	}
}

// event writes one event; an error is the client's going away.
func (s *sse) event(typ string, data []byte) error {
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", typ, data); err != nil {
		return err
	}
	s.flush()
	return nil
}

// comment writes an SSE comment line (ignored by clients): the queue and orchestration
// messages, which keep an idle connection alive while the image waits.
func (s *sse) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	s.flush()
	return nil
}

// fail ends a started stream with an error event holding OpenAI's error object (the SDKs'
// iterators return it as their error).
func (s *sse) fail(err error) {
	_ = s.event("error", httperr.From(err).Body(httperr.OpenAI))
}

// streamImages answers a streaming request: for each image, its partial images (from
// the engine's previews) then its completed event. A refusal before the first message is
// answered with its status; an error after it ends the stream with an error event.
func (h *Handler) streamImages(w http.ResponseWriter, r *http.Request, req streamRequest) {
	var out *sse
	sent := map[int32]int{} // partial images sent, per image of the batch
	err := h.runJob(r, req, func(msg *orchestratorv1.GenerateImageResponse) error {
		if out == nil {
			out = startSSE(w)
		}
		switch p := msg.GetPayload().(type) {
		case *orchestratorv1.GenerateImageResponse_JobId:
			return out.comment("job " + p.JobId)
		case *orchestratorv1.GenerateImageResponse_Queue:
			return out.comment(fmt.Sprintf("queued: position %d of %d", p.Queue.GetPosition(), p.Queue.GetQueueLength()))
		case *orchestratorv1.GenerateImageResponse_Event:
			return out.comment(oneLine(p.Event.GetMessage()))
		case *orchestratorv1.GenerateImageResponse_Progress:
			pv := p.Progress.GetPreview()
			k := pv.GetImageIndex()
			if sent[k] >= req.partials || len(pv.GetPng()) == 0 || pv.GetStep() < partialThreshold(sent[k], req.partials, p.Progress.GetTotalSteps()) {
				return nil
			}
			idx := sent[k]
			sent[k]++
			return out.event(req.events.partial, imageEvent{
				Type: req.events.partial, CreatedAt: time.Now().Unix(), Size: req.size, Quality: "auto",
				Background: "opaque", OutputFormat: "png", PartialImageIndex: &idx,
			}.json(pv.GetPng()))
		}
		return nil
	}, func(img image) error {
		if out == nil {
			out = startSSE(w)
		}
		return out.event(req.events.completed, imageEvent{
			Type: req.events.completed, CreatedAt: time.Now().Unix(), Size: fmt.Sprintf("%dx%d", img.width, img.height),
			Quality: "auto", Background: "opaque", OutputFormat: "png", Usage: &imageUsage{},
		}.json(img.png))
	})
	switch {
	case err == nil:
	case out == nil:
		writeGRPCError(w, err)
	case r.Context().Err() == nil:
		out.fail(err)
	}
}

// image is one finished image of a job.
type image struct {
	png           []byte
	width, height int32
	seed          int64
}

// imagesOf lists a result's images: the first, then the rest of its batch.
func imagesOf(res *diffusionv1.ImageResult) []image {
	out := []image{{png: res.GetPng(), width: res.GetWidth(), height: res.GetHeight(), seed: res.GetSeed()}}
	for _, b := range res.GetBatch() {
		out = append(out, image{png: b.GetPng(), width: b.GetWidth(), height: b.GetHeight(), seed: b.GetSeed()})
	}
	return out
}

// runJob runs the request as one orchestrator job (n images are one batch: one engine run,
// one offload cycle, seeds seed, seed+1, ...) through its GenerateImage stream, calling
// onMsg (nil: none) with every message before the result and onImage with each image. An
// error of a callback (the client went away) ends it.
func (h *Handler) runJob(r *http.Request, req streamRequest, onMsg func(*orchestratorv1.GenerateImageResponse) error, onImage func(image) error) error {
	stream, err := h.orch.GenerateImage(r.Context(), &orchestratorv1.GenerateImageRequest{Params: req.params()})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("the orchestrator ended the stream without an image")
		}
		if err != nil {
			return err
		}
		if res := msg.GetResult(); res != nil {
			for _, img := range imagesOf(res) {
				if err := onImage(img); err != nil {
					return err
				}
			}
			return nil
		}
		if onMsg != nil {
			if err := onMsg(msg); err != nil {
				return err
			}
		}
	}
}

// partialThreshold is the step from which partial image k (0-based) of n is sent: the n
// partial images are spread evenly over the steps, the last before the final image.
func partialThreshold(k, n int, steps int32) int32 {
	if steps <= 0 {
		return 0
	}
	num := int64(k+1) * int64(steps)
	return int32((num + int64(n)) / int64(n+1)) // ceil((k+1)*steps/(n+1))
}

// previewFor is the preview option of an image with n partial images: the cheap latent
// projection, every steps/(n+1) steps, so that the engine decodes few more previews than
// are sent.
func previewFor(p *diffusionv1.ImageParams, n int) *diffusionv1.PreviewOptions {
	steps := int32(imagereq.DefaultSteps)
	if p.Steps != nil {
		steps = *p.Steps
	}
	interval := steps / int32(n+1)
	if interval < 1 {
		interval = 1
	}
	return &diffusionv1.PreviewOptions{Method: diffusionv1.PreviewMethod_PREVIEW_METHOD_PROJ, Interval: proto.Int32(interval)}
}

// clampInt32 keeps a JSON number within int32, so that the validator sees it out of range
// rather than wrapped round.
func clampInt32(v int) int32 {
	return int32(max(min(v, math.MaxInt32), math.MinInt32))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	return b
}

// oneLine keeps an SSE comment on one line.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
