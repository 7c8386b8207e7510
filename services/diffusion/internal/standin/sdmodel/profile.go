package sdmodel

// Module is a part of the model whose weights sd.cpp loads lazily, the first time it is used.
type Module struct {
	Name    string // "clip", "unet", "taesd": the prefix of ggml_extend messages
	Tensors int    // tensors loaded, shown as the bar total
	Bytes   int64  // bytes loaded, for the MB/s figure
}

// Profile is the description the stand-ins print for any valid model: the tinysd.gguf model of
// the reference captures, an SDXS-512-DS layout with TAESD as VAE.
type Profile struct {
	Version       string   // `Version: %s` (with sd.cpp's trailing space)
	TypeStats     []string // the four weight-type-stat lines, verbatim
	MemoryLine    string   // total params memory size line
	Prediction    string   // `running in %s mode`
	TotalTensors  int
	TextEncoder   Module
	Diffusion     Module
	VAE           Module
	DefaultMethod string // default sampler (euler_a for this model)
}

const mib = 1024 * 1024

// TinySD is the profile of the captured model.
var TinySD = Profile{
	Version: "SDXS (512-DS) ",
	TypeStats: []string{
		"Weight type stat:                      f32: 352  |     f16: 114  |    q4_0: 144  ",
		"Conditioner weight type stat:          f32: 123  |    q4_0: 73   ",
		"Diffusion model weight type stat:      f32: 165  |     f16: 44   |    q4_0: 71   ",
		"VAE weight type stat:             ",
	},
	MemoryLine:    "total params memory size = 76.02MB (VRAM 0.00MB, RAM 76.02MB): text_encoders 66.61MB(RAM), diffusion_model 4.74MB(RAM), vae 4.67MB(RAM), controlnet 0.00MB(N/A), extensions 0.00MB(N/A)",
	Prediction:    "eps-prediction",
	TotalTensors:  610,
	TextEncoder:   Module{Name: "clip", Tensors: 196, Bytes: 6661 * mib / 100},
	Diffusion:     Module{Name: "unet", Tensors: 280, Bytes: 474 * mib / 100},
	VAE:           Module{Name: "taesd", Tensors: 67, Bytes: 234 * mib / 100},
	DefaultMethod: "euler_a",
}
