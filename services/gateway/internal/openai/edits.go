package openai

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/pkg/httperr"
)

// editRequest is OpenAI's image edit request (multipart/form-data), with the
// stable-diffusion extensions of the generation request and strength.
type editRequest struct {
	image, mask    []byte
	prompt         string
	negativePrompt string
	n              *int
	size           string
	responseFormat string
	stream         bool
	partialImages  *int
	steps          *int32
	cfgScale       *float32
	seed           *int64
	strength       *float32
	sampler        string
}

// EditsPath is the image edit route, whose multipart body the gateway caps apart.
const EditsPath = Prefix + "images/edits"

// maxMultipartMemory is how much of a multipart body is kept in memory; the gateway's
// body cap bounds the whole body.
const maxMultipartMemory = 32 << 20

// parseEdit reads the multipart form. Only the form's shape is checked here (a field
// that is a number, one image); the images themselves are pkg/imagereq's to check.
func parseEdit(r *http.Request) (*editRequest, error) {
	if err := r.ParseMultipartForm(maxMultipartMemory); err != nil {
		if errors.Is(err, http.ErrNotMultipart) {
			return nil, errors.New("an image edit is multipart/form-data with an image file, a prompt and optionally a mask")
		}
		return nil, fmt.Errorf("read the form: %w", err)
	}
	defer r.MultipartForm.RemoveAll()
	e := &editRequest{}
	var err error
	if e.image, err = formFile(r.MultipartForm, "image", true); err != nil {
		return nil, err
	}
	if e.mask, err = formFile(r.MultipartForm, "mask", false); err != nil {
		return nil, err
	}
	v := formValues{form: r.MultipartForm}
	e.prompt = v.str("prompt")
	e.negativePrompt = v.str("negative_prompt")
	e.size = v.str("size")
	e.responseFormat = v.str("response_format")
	e.sampler = v.str("sampler")
	e.n = v.int("n")
	e.partialImages = v.int("partial_images")
	e.stream = v.bool("stream")
	if s := v.int("steps"); s != nil {
		e.steps = proto.Int32(int32(*s))
	}
	e.cfgScale = v.float("cfg_scale")
	e.strength = v.float("strength")
	if s := v.int("seed"); s != nil {
		e.seed = proto.Int64(int64(*s))
	}
	if v.err != nil {
		return nil, v.err
	}
	return e, nil
}

// formFile reads the one file of a field; OpenAI's SDKs send "image" (or "image[]" for
// a list, of which genailab takes exactly one).
func formFile(f *multipart.Form, name string, required bool) ([]byte, error) {
	files := append(append([]*multipart.FileHeader{}, f.File[name]...), f.File[name+"[]"]...)
	switch {
	case len(files) == 0 && required:
		if _, ok := f.Value[name]; ok {
			return nil, fmt.Errorf("%s must be a file upload, not a text field", name)
		}
		return nil, fmt.Errorf("%s is required: upload the PNG or JPEG to edit", name)
	case len(files) == 0:
		return nil, nil
	case len(files) > 1:
		return nil, fmt.Errorf("%s: %d files sent, one is supported", name, len(files))
	}
	fh, err := files[0].Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", name)
	}
	return b, nil
}

// formValues reads text fields, keeping the first error.
type formValues struct {
	form *multipart.Form
	err  error
}

func (v *formValues) str(name string) string {
	if vs := v.form.Value[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (v *formValues) int(name string) *int {
	s := strings.TrimSpace(v.str(name))
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil && v.err == nil {
		v.err = fmt.Errorf("%s %q: want a whole number", name, s)
	}
	return &n
}

func (v *formValues) float(name string) *float32 {
	s := strings.TrimSpace(v.str(name))
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 32)
	if err != nil && v.err == nil {
		v.err = fmt.Errorf("%s %q: want a number", name, s)
	}
	f32 := float32(f)
	return &f32
}

func (v *formValues) bool(name string) bool {
	s := strings.TrimSpace(v.str(name))
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil && v.err == nil {
		v.err = fmt.Errorf("%s %q: want true or false", name, s)
	}
	return b
}

// edits edits an uploaded image (img2img; inpainting with a mask) through the
// orchestrator: n images, or with "stream": true the events of images_stream.go (named
// image_edit.*).
func (h *Handler) edits(w http.ResponseWriter, r *http.Request) {
	if h.orch == nil {
		writeError(w, unavailable("no orchestrator configured behind this gateway"))
		return
	}
	e, err := parseEdit(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, httperr.From(err))
			return
		}
		writeError(w, httperr.Invalid(err.Error()))
		return
	}
	width, height, err := parseSize(e.size)
	if err != nil {
		writeError(w, httperr.Invalid(err.Error()))
		return
	}
	g := imageJob{
		n: e.n, responseFormat: e.responseFormat, stream: e.stream, partialImages: e.partialImages, seed: e.seed, events: editEvents,
		params: &diffusionv1.ImageParams{Prompt: e.prompt, NegativePrompt: e.negativePrompt, Width: width, Height: height,
			Steps: e.steps, CfgScale: e.cfgScale, Sampler: e.sampler,
			InitImage: e.image, Mask: e.mask, Strength: e.strength},
	}
	h.runImages(w, r, g)
}
