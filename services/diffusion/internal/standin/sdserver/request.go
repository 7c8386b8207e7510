package sdserver

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdgen"
)

// genRequest is one image generation request after defaults and clamping.
type genRequest struct {
	Prompt, Negative string
	Width, Height    int
	Seed             int64
	Batch            int
	Steps            int
	CFG              float32
	Sampler          string // "" = model default (metadata says NONE)
	Scheduler        string
	OutputFormat     string // png or jpeg
	Quality          int
}

// object is a parsed JSON object whose members are read the way sd-server's load_if_exists
// does: a member of the wrong type is ignored.
type object map[string]json.RawMessage

func decodeObject(raw []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, &json.SyntaxError{}
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return object{}, nil // valid JSON but not an object: nothing to read
	}
	return o, nil
}

func (o object) str(key string, dst *string) bool {
	var s string
	if raw, ok := o[key]; ok && json.Unmarshal(raw, &s) == nil && len(raw) > 0 && raw[0] == '"' {
		*dst = s
		return true
	}
	return false
}

// integer reads an integer member (nlohmann's is_number_integer: no fraction, no exponent).
func (o object) integer(key string) (int64, bool) {
	raw, ok := o[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

func (o object) number(key string) (float64, bool) {
	raw, ok := o[key]
	if !ok || len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

func (o object) obj(key string) object {
	var sub object
	if raw, ok := o[key]; ok && len(raw) > 0 && raw[0] == '{' {
		_ = json.Unmarshal(raw, &sub)
	}
	return sub
}

func clamp(n, lo, hi int64) int { return int(min(hi, max(lo, n))) }

// errOutputFormat is sd-server's answer to an output_format other than png or jpeg.
const errOutputFormat = "invalid output_format, must be one of [png, jpeg]"

// applyNative applies the members of an img_gen body (or an <sd_cpp_extra_args> block) to r.
// It returns the validation error sd-server answers with 400, or "".
func (r *genRequest) applyNative(o object) string {
	o.str("prompt", &r.Prompt)
	o.str("negative_prompt", &r.Negative)
	if n, ok := o.integer("width"); ok {
		r.Width = clamp(n, 1, 4096)
	}
	if n, ok := o.integer("height"); ok {
		r.Height = clamp(n, 1, 4096)
	}
	if n, ok := o.integer("seed"); ok {
		r.Seed = n
	}
	if n, ok := o.integer("batch_count"); ok {
		r.Batch = clamp(n, 1, 8)
	}
	var f string
	if o.str("output_format", &f) {
		if f != "png" && f != "jpeg" {
			return errOutputFormat
		}
		r.OutputFormat = f
	}
	if n, ok := o.integer("output_compression"); ok {
		r.Quality = clamp(n, 0, 100)
	}
	sp := o.obj("sample_params")
	if n, ok := sp.integer("sample_steps"); ok {
		r.Steps = clamp(n, 1, 100)
	}
	var s string
	if sp.str("sample_method", &s) && sdgen.ValidSampler(s) {
		r.Sampler = s
	}
	if sp.str("scheduler", &s) {
		if c, ok := sdgen.CanonicalScheduler(s); ok {
			r.Scheduler = c
		}
	}
	if v, ok := sp.obj("guidance").number("txt_cfg"); ok {
		r.CFG = float32(v)
	}
	return ""
}

// resolveSeed draws a random seed for a negative one, as sd-server does before generating.
func (r *genRequest) resolveSeed() {
	if r.Seed < 0 {
		r.Seed = rand.Int64N(1 << 31)
	}
}

// extraArgs splits the OpenAI prompt into the prompt proper and the JSON between
// <sd_cpp_extra_args> and </sd_cpp_extra_args>.
func extraArgs(prompt string) (string, string) {
	const open, closing = "<sd_cpp_extra_args>", "</sd_cpp_extra_args>"
	i := strings.Index(prompt, open)
	if i < 0 {
		return prompt, ""
	}
	j := strings.Index(prompt[i:], closing)
	if j < 0 {
		return prompt, ""
	}
	return prompt[:i] + prompt[i+j+len(closing):], prompt[i+len(open) : i+j]
}

// parseSize reads OpenAI's "WxH".
func parseSize(s string) (int, int, bool) {
	ws, hs, ok := strings.Cut(s, "x")
	if !ok {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, false
	}
	return min(w, 4096), min(h, 4096), true
}

func (r genRequest) params() sdgen.Params {
	return sdgen.Params{Prompt: r.Prompt, Negative: r.Negative, Width: r.Width, Height: r.Height, Steps: r.Steps,
		CFG: r.CFG, Seed: r.Seed, Batch: r.Batch, Sampler: r.Sampler, Scheduler: r.Scheduler}
}
