package sdimage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// Generator identifies the sd.cpp build the stand-ins imitate.
const (
	Version = "master-827-97d2990"
	Commit  = "97d2990"
)

// ModelRef is one model file named in the metadata, e.g. {"model", "tinysd.gguf"}.
type ModelRef struct{ Key, Path string }

// Meta is what sd.cpp records in an image's `parameters` text.
type Meta struct {
	Prompt, Negative string
	Steps            int
	CFG              float32
	Seed             int64
	Width, Height    int // as requested (before alignment to 64)
	Models           []ModelRef
	Sampler          string // "" when left to the model default (sd-server): `Sampler: NONE`
	Scheduler        string // "" when left to the default
}

// Text renders the `parameters` text: prompt, optional negative prompt, the A1111-style
// settings line, and the `SDCPP: {json}` record (sorted keys, as nlohmann::json writes them).
func (m Meta) Text() string {
	var b strings.Builder
	b.WriteString(m.Prompt)
	b.WriteByte('\n')
	if m.Negative != "" {
		fmt.Fprintf(&b, "Negative prompt: %s\n", m.Negative)
	}
	model := ""
	for _, r := range m.Models {
		if r.Key == "model" || (model == "" && r.Key == "diffusion_model") {
			model = filepath.Base(r.Path)
		}
	}
	sampler := m.Sampler
	if sampler == "" {
		sampler = "NONE"
	}
	if m.Scheduler != "" {
		sampler += " " + m.Scheduler
	}
	fmt.Fprintf(&b, "Steps: %d, CFG scale: %f, Guidance: %f, Eta: inf, Seed: %d, Size: %dx%d, Model: %s, RNG: cuda, Sampler: %s, Version: stable-diffusion.cpp, SDCPP: ",
		m.Steps, m.CFG, float32(3.5), m.Seed, m.Width, m.Height, model, sampler)
	b.WriteString(m.record())
	return b.String()
}

func (m Meta) record() string {
	var b strings.Builder
	b.WriteString(`{"auto_resize_ref_image":true,"clip_skip":-1,"control_strength":`)
	b.WriteString(jsonFloat(0.9))
	fmt.Fprintf(&b, `,"generator":{"commit":%s,"name":"stable-diffusion.cpp","version":%s},"height":%d`, jsonString(Commit), jsonString(Version), m.Height)
	b.WriteString(`,"increase_ref_index":false,"ip_adapter_strength":1.0,"mode":"img_gen","models":{`)
	for i, r := range sortedModels(m.Models) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%s", jsonString(r.Key), jsonString(filepath.Base(r.Path)))
	}
	fmt.Fprintf(&b, `},"prompt":{"negative":%s,"positive":%s},"rng":"cuda","sampling":{"custom_sigmas":[],"eta":null,"extra_sample_args":"","flow_shift":null,"guidance":{"distilled_guidance":%s,"img_cfg":null,"slg":{"end":%s,"layers":[7,8,9],"scale":0.0,"start":%s},"txt_cfg":%s}`,
		jsonString(m.Negative), jsonString(m.Prompt), jsonFloat(3.5), jsonFloat(0.2), jsonFloat(0.01), jsonFloat(m.CFG))
	if m.Sampler != "" {
		fmt.Fprintf(&b, `,"method":%s`, jsonString(m.Sampler))
	}
	if m.Scheduler != "" {
		fmt.Fprintf(&b, `,"scheduler":%s`, jsonString(m.Scheduler))
	}
	fmt.Fprintf(&b, `,"shifted_timestep":0,"steps":%d},"schema":"sdcpp.image.params/v1","seed":%d,"strength":%s,"width":%d}`,
		m.Steps, m.Seed, jsonFloat(0.75), m.Width)
	return b.String()
}

func sortedModels(in []ModelRef) []ModelRef {
	out := append([]ModelRef(nil), in...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Key < out[j-1].Key; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// jsonString encodes s as nlohmann::json does: UTF-8 kept as is, no HTML escaping.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

// jsonFloat writes a float32 widened to double as nlohmann::json does: the shortest
// representation of the double, with ".0" added to integral values.
func jsonFloat(f float32) string {
	d := float64(f)
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return "null"
	}
	if a := math.Abs(d); a != 0 && (a < 1e-4 || a >= 1e15) {
		return strconv.FormatFloat(d, 'g', -1, 64)
	}
	s := strconv.FormatFloat(d, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// JSONFloat is jsonFloat for other stand-in packages that answer in nlohmann's number format.
func JSONFloat(f float32) string { return jsonFloat(f) }

// JSONString is jsonString for other stand-in packages.
func JSONString(s string) string { return jsonString(s) }
