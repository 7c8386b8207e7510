package sdserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdgen"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdimage"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
)

// Server is the HTTP side of the stand-in plus its one generation worker.
type Server struct {
	log      *sdlog.Logger
	eng      *sdgen.Engine
	modelMu  sync.Mutex // sd_ctx_mutex: one generation at a time, async or not
	defaults genRequest
	models   []sdimage.ModelRef
	html     []byte // --serve-html-path content, or nil
	jobs     *jobs
	die      func(syscall.Signal)
	ctx      context.Context // the server's lifetime: generations are not tied to a request
	now      func() time.Time
}

// errGenerate is the message of a failed generation (the job's error.message).
const errGenerate = "generate_image returned no results"

// generate runs one request under the model lock and returns the encoded images.
func (s *Server) generate(ctx context.Context, req genRequest) ([]string, error) {
	s.modelMu.Lock()
	defer s.modelMu.Unlock()
	req.resolveSeed()
	res, err := s.eng.Generate(ctx, req.params())
	var crash *sdgen.CrashError
	switch {
	case errors.As(err, &crash):
		s.die(crash.Signal)
		return nil, err
	case err != nil:
		return nil, err
	}
	var out []string
	for i, img := range res.Images {
		if img == nil {
			continue // results[i].data == nullptr: skipped, as sd-server does
		}
		var data []byte
		if req.OutputFormat == "jpeg" {
			data, err = sdimage.EncodeJPEG(img, req.Quality)
		} else {
			meta := sdimage.Meta{Prompt: req.Prompt, Negative: req.Negative, Steps: req.Steps, CFG: req.CFG,
				Seed: res.Seeds[i], Width: req.Width, Height: req.Height, Models: s.models,
				Sampler: req.Sampler, Scheduler: req.Scheduler}
			data, err = sdimage.EncodePNG(img, meta.Text())
		}
		if err != nil {
			return nil, err
		}
		out = append(out, base64.StdEncoding.EncodeToString(data))
	}
	return out, nil
}

// work runs queued jobs one at a time until ctx ends.
func (s *Server) work(ctx context.Context) {
	for {
		j := s.jobs.take(ctx)
		if j == nil {
			return
		}
		images, err := s.generate(ctx, j.req)
		if ctx.Err() != nil {
			return
		}
		msg := ""
		if err != nil {
			msg = errGenerate
		}
		s.jobs.finish(j, images, msg)
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if r.Method == http.MethodOptions {
		reply(w, r, http.StatusNoContent, "", nil)
		return
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	post := r.Method == http.MethodPost
	switch {
	case get && path == "/":
		body := []byte("Stable Diffusion Server is running")
		if s.html != nil {
			body = s.html
		}
		reply(w, r, http.StatusOK, "text/html", body)
	case get && path == "/v1/models":
		reply(w, r, http.StatusOK, "application/json", []byte(`{"data":[{"id":"sd-cpp-local","object":"model","owned_by":"local"}]}`))
	case get && path == "/sdcpp/v1/capabilities":
		reply(w, r, http.StatusOK, "application/json", []byte(s.capabilities()))
	case get && path == "/sdapi/v1/samplers":
		reply(w, r, http.StatusOK, "application/json", []byte(samplersJSON))
	case get && path == "/sdapi/v1/schedulers":
		reply(w, r, http.StatusOK, "application/json", []byte(schedulersJSON))
	case get && path == "/sdapi/v1/upscalers":
		reply(w, r, http.StatusOK, "application/json", []byte(upscalersJSON))
	case get && path == "/sdapi/v1/loras":
		reply(w, r, http.StatusOK, "application/json", []byte("[]"))
	case get && path == "/sdapi/v1/sd-models":
		file, stem := s.modelName()
		replyJSON(w, r, http.StatusOK, []any{map[string]any{"config": nil, "filename": file, "hash": "8888888888",
			"model_name": stem, "sha256": strings.Repeat("8", 64), "title": stem}})
	case get && path == "/sdapi/v1/options":
		_, stem := s.modelName()
		replyJSON(w, r, http.StatusOK, map[string]any{"samples_format": "png", "sd_model_checkpoint": stem})
	case post && path == "/sdcpp/v1/img_gen":
		s.imgGen(w, r)
	case post && path == "/v1/images/generations":
		s.openAI(w, r)
	case post && path == "/sdapi/v1/txt2img":
		s.txt2img(w, r)
	case strings.HasPrefix(path, "/sdcpp/v1/jobs/"):
		id, cancel := strings.TrimPrefix(path, "/sdcpp/v1/jobs/"), false
		if rest, ok := strings.CutSuffix(id, "/cancel"); ok {
			id, cancel = rest, true
		}
		switch {
		case strings.Contains(id, "/") || id == "":
			reply(w, r, http.StatusNotFound, "", nil)
		case cancel && post:
			s.cancel(w, r, id)
		case !cancel && get:
			s.job(w, r, id)
		default:
			reply(w, r, http.StatusNotFound, "", nil)
		}
	default:
		reply(w, r, http.StatusNotFound, "", nil)
	}
}

// modelName is the model file name and its stem, as /sdapi/v1/sd-models shows them.
func (s *Server) modelName() (string, string) {
	path := ""
	for _, m := range s.models {
		if m.Key == "model" || (path == "" && m.Key == "diffusion_model") {
			path = m.Path
		}
	}
	file := filepath.Base(path)
	return file, strings.TrimSuffix(file, filepath.Ext(file))
}

func (s *Server) capabilities() string {
	file, stem := s.modelName()
	path := ""
	for _, m := range s.models {
		if m.Key == "model" || (path == "" && m.Key == "diffusion_model") {
			path = m.Path
		}
	}
	model := string(marshal(map[string]any{"name": file, "path": path, "stem": stem}))
	return strings.Replace(capabilitiesJSON, `"model":{"name":"tinysd.gguf","path":"tinysd.gguf","stem":"tinysd"}`, `"model":`+model, 1)
}

// readBody reads a request body; ok is false after answering 400 `empty body`.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err != nil || len(body) == 0 {
		replyError(w, r, http.StatusBadRequest, "empty body")
		return nil, false
	}
	return body, true
}

// parseError is nlohmann's message for a body that is not JSON.
func parseError(body []byte) string {
	if msg, ok := nlohmannParseError(body); ok {
		return msg
	}
	return "[json.exception.parse_error.101] parse error: syntax error"
}

func (s *Server) imgGen(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	o, err := decodeObject(body)
	if err != nil {
		replyJSON(w, r, http.StatusBadRequest, map[string]any{"error": "invalid json", "message": parseError(body)})
		return
	}
	req := s.defaults
	if msg := req.applyNative(o); msg != "" {
		replyError(w, r, http.StatusBadRequest, msg)
		return
	}
	j, err := s.jobs.submit(req)
	if err != nil {
		replyError(w, r, http.StatusTooManyRequests, err.Error())
		return
	}
	replyJSON(w, r, http.StatusAccepted, map[string]any{"id": j.id, "kind": "img_gen", "status": statusQueued,
		"created": j.created, "poll_url": "/sdcpp/v1/jobs/" + j.id})
}

func (s *Server) job(w http.ResponseWriter, r *http.Request, id string) {
	v, expired := s.jobs.lookup(id)
	switch {
	case v != nil:
		replyJSON(w, r, http.StatusOK, v)
	case expired:
		replyError(w, r, http.StatusGone, "job expired")
	default:
		replyError(w, r, http.StatusNotFound, "job not found")
	}
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, id string) {
	v, expired, generating := s.jobs.cancel(id)
	switch {
	case generating:
		replyError(w, r, http.StatusConflict, "job is currently generating and cannot be interrupted yet")
	case v != nil:
		replyJSON(w, r, http.StatusOK, v)
	case expired:
		replyError(w, r, http.StatusGone, "job expired")
	default:
		replyError(w, r, http.StatusNotFound, "job not found")
	}
}

// openAI is the synchronous POST /v1/images/generations.
func (s *Server) openAI(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	o, err := decodeObject(body)
	if err != nil {
		replyJSON(w, r, http.StatusInternalServerError, map[string]any{"error": "server_error", "message": parseError(body)})
		return
	}
	req := s.defaults
	var prompt string
	if !o.str("prompt", &prompt) {
		replyError(w, r, http.StatusBadRequest, "prompt required")
		return
	}
	prompt, extra := extraArgs(prompt)
	req.Prompt = prompt
	var size string
	if o.str("size", &size) {
		if w, h, ok := parseSize(size); ok {
			req.Width, req.Height = w, h
		}
	}
	if n, ok := o.integer("n"); ok {
		req.Batch = clamp(n, 1, 8)
	}
	var f string
	if o.str("output_format", &f) {
		if f != "png" && f != "jpeg" {
			replyError(w, r, http.StatusBadRequest, errOutputFormat)
			return
		}
		req.OutputFormat = f
	}
	if n, ok := o.integer("output_compression"); ok {
		req.Quality = clamp(n, 0, 100)
	}
	if extra != "" {
		if eo, err := decodeObject([]byte(extra)); err == nil {
			if msg := req.applyNative(eo); msg != "" {
				replyError(w, r, http.StatusBadRequest, msg)
				return
			}
		}
	}
	images, err := s.generate(s.ctx, req)
	if err != nil {
		replyJSON(w, r, http.StatusInternalServerError, map[string]any{"error": "server_error", "message": errGenerate})
		return
	}
	data := make([]any, len(images))
	for i, b := range images {
		data[i] = map[string]any{"b64_json": b}
	}
	replyJSON(w, r, http.StatusOK, map[string]any{"created": s.now().Unix(), "data": data, "output_format": req.OutputFormat})
}

// txt2img is the A1111-style POST /sdapi/v1/txt2img.
func (s *Server) txt2img(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	o, err := decodeObject(body)
	if err != nil {
		replyJSON(w, r, http.StatusInternalServerError, map[string]any{"error": "server_error", "message": parseError(body)})
		return
	}
	req := s.defaults
	o.str("prompt", &req.Prompt)
	o.str("negative_prompt", &req.Negative)
	if n, ok := o.integer("width"); ok {
		req.Width = clamp(n, 1, 4096)
	}
	if n, ok := o.integer("height"); ok {
		req.Height = clamp(n, 1, 4096)
	}
	if n, ok := o.integer("steps"); ok {
		req.Steps = clamp(n, 1, 100)
	}
	if n, ok := o.integer("seed"); ok {
		req.Seed = n
	}
	if n, ok := o.integer("batch_size"); ok {
		req.Batch = clamp(n, 1, 8)
	}
	if v, ok := o.number("cfg_scale"); ok {
		req.CFG = float32(v)
	}
	var sname string
	if o.str("sampler_name", &sname) && sdgen.ValidSampler(sname) {
		req.Sampler = sname
	}
	req.resolveSeed()
	images, err := s.generate(s.ctx, req)
	if err != nil {
		replyJSON(w, r, http.StatusInternalServerError, map[string]any{"error": "server_error", "message": errGenerate})
		return
	}
	seeds, prompts, negatives, texts := []any{}, []any{}, []any{}, []any{}
	for i := range images {
		seed := req.Seed + int64(i)
		seeds = append(seeds, seed)
		prompts = append(prompts, req.Prompt)
		negatives = append(negatives, req.Negative)
		texts = append(texts, sdimage.Meta{Prompt: req.Prompt, Negative: req.Negative, Steps: req.Steps, CFG: req.CFG,
			Seed: seed, Width: req.Width, Height: req.Height, Models: s.models, Sampler: req.Sampler,
			Scheduler: req.Scheduler}.Text())
	}
	sampler := req.Sampler
	if sampler == "" {
		sampler = "NONE"
	}
	file, _ := s.modelName()
	info := marshal(map[string]any{"all_negative_prompts": negatives, "all_prompts": prompts, "all_seeds": seeds,
		"cfg_scale": nfloat(req.CFG), "height": req.Height, "infotexts": texts, "prompt": req.Prompt,
		"sampler_name": sampler, "sd_model_name": file, "seed": req.Seed, "steps": req.Steps,
		"version": "stable-diffusion.cpp", "width": req.Width})
	var params any
	_ = json.Unmarshal(body, &params)
	imgs := make([]any, len(images))
	for i, b := range images {
		imgs[i] = b
	}
	replyJSON(w, r, http.StatusOK, map[string]any{"images": imgs, "info": string(info), "parameters": jsonNumbers(body, params)})
}

// jsonNumbers re-reads body keeping numbers' text, so the echoed parameters keep 64 as 64.
func jsonNumbers(body []byte, fallback any) any {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return fallback
	}
	return v
}
