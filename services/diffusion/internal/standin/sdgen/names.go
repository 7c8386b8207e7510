package sdgen

// Samplers are the sampling methods sd.cpp accepts, in its order.
var Samplers = []string{"euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "ipndm",
	"ipndm_v", "lcm", "ddim_trailing", "tcd", "res_multistep", "res_2s", "er_sde", "euler_cfg_pp",
	"euler_a_cfg_pp", "euler_ge", "dpm++2m_sde", "dpm++2m_sde_bt", "lms"}

// Schedulers are the sigma schedulers sd.cpp accepts (`normal` is an alias of `discrete`).
var Schedulers = []string{"discrete", "karras", "exponential", "ays", "gits", "sgm_uniform", "simple",
	"smoothstep", "kl_optimal", "lcm", "bong_tangent", "ltx2", "logit_normal", "flux2", "flux", "beta"}

// samplerTitle is the name in `sampling using %s method`. Only "Euler A" is in the captures; the
// others follow sd.cpp's naming style.
var samplerTitle = map[string]string{
	"euler": "Euler", "euler_a": "Euler A", "heun": "Heun", "dpm2": "DPM2", "dpm++2s_a": "DPM++ (2s)",
	"dpm++2m": "DPM++ (2M)", "dpm++2mv2": "modified DPM++ (2M)", "ipndm": "IPNDM", "ipndm_v": "IPNDM_V",
	"lcm": "LCM", "ddim_trailing": "DDIM \"trailing\"", "tcd": "TCD", "res_multistep": "Res Multistep",
	"res_2s": "Res 2s", "er_sde": "ER-SDE", "euler_cfg_pp": "Euler CFG++", "euler_a_cfg_pp": "Euler A CFG++",
	"euler_ge": "Euler GE", "dpm++2m_sde": "DPM++ (2M) SDE", "dpm++2m_sde_bt": "DPM++ (2M) SDE BT", "lms": "LMS",
}

// ValidSampler reports whether name is a sampling method sd.cpp knows.
func ValidSampler(name string) bool { _, ok := samplerTitle[name]; return ok }

// CanonicalScheduler resolves aliases; ok is false for unknown names.
func CanonicalScheduler(name string) (string, bool) {
	if name == "normal" {
		return "discrete", true
	}
	for _, s := range Schedulers {
		if s == name {
			return s, true
		}
	}
	return "", false
}
