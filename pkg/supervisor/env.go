package supervisor

import (
	"os"
	"strings"
)

// DropPrefixes returns a DropEnv filter that drops variables whose name starts
// with one of the prefixes (for example "LLAMA_ARG_", which silently changes
// llama-server's settings).
func DropPrefixes(prefixes ...string) func(key string) bool {
	return func(key string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
		return false
	}
}

// engineEnvNames and engineEnvPrefixes are what EngineEnv lets an engine
// inherit: where to find programs and libraries, the user's home, locale,
// time zone and temporary directory, and the variables that select or tune
// GPUs (CUDA, ROCm/HIP, oneAPI/SYCL, Vulkan, ggml's own).
var (
	engineEnvNames = map[string]bool{
		"PATH": true, "HOME": true, "USER": true, "LOGNAME": true,
		"LANG": true, "LANGUAGE": true, "TZ": true, "TMPDIR": true,
		// A system engine may need its libraries found (see pkg/llamabin).
		"LD_LIBRARY_PATH": true,
		"XDG_CACHE_HOME":  true, "XDG_RUNTIME_DIR": true,
		"GPU_DEVICE_ORDINAL": true, "ZE_AFFINITY_MASK": true, "ONEAPI_DEVICE_SELECTOR": true,
		"SYCL_DEVICE_FILTER": true, "VK_ICD_FILENAMES": true, "VK_DRIVER_FILES": true,
		"OMP_NUM_THREADS": true,
	}
	engineEnvPrefixes = []string{"LC_", "CUDA_", "NVIDIA_", "HIP_", "ROCR_", "HSA_", "GGML_"}
)

// SecretEnv reports whether a variable name looks like it holds a secret: a
// genailab setting (GENAILAB_*: tokens, and the service's whole
// configuration) or a name that says TOKEN, SECRET, PASSWORD, PASSWD,
// CREDENTIAL or KEY (as a word: API_KEY, AWS_SECRET_ACCESS_KEY, HF_TOKEN).
func SecretEnv(key string) bool {
	if strings.HasPrefix(key, "GENAILAB_") {
		return true
	}
	upper := strings.ToUpper(key)
	for _, w := range []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"} {
		if strings.Contains(upper, w) {
			return true
		}
	}
	for _, part := range strings.Split(upper, "_") {
		if part == "KEY" || part == "APIKEY" {
			return true
		}
	}
	return false
}

// EngineEnv is the KeepEnv allow-list for engines (llama-server, sd-cli,
// sd-server): an engine inherits only PATH, HOME, USER, LOGNAME, LANG,
// LANGUAGE, LC_*, TZ, TMPDIR, LD_LIBRARY_PATH, XDG_CACHE_HOME,
// XDG_RUNTIME_DIR, OMP_NUM_THREADS and the GPU selection and tuning
// variables (CUDA_*, NVIDIA_*, HIP_*, ROCR_*, HSA_*, GGML_*,
// GPU_DEVICE_ORDINAL, ZE_AFFINITY_MASK, ONEAPI_DEVICE_SELECTOR,
// SYCL_DEVICE_FILTER, VK_ICD_FILENAMES, VK_DRIVER_FILES), and never one
// SecretEnv flags. Everything else of the service's environment (its
// tokens, its GENAILAB_* configuration, the operator's cloud credentials)
// stays with the service; what the engine needs besides is set explicitly
// through Spec.Env.
func EngineEnv(key string) bool {
	if SecretEnv(key) {
		return false
	}
	if engineEnvNames[key] {
		return true
	}
	for _, p := range engineEnvPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// FilterEnv returns the entries of environ whose names keep accepts, in
// order (for engines not run through a Supervisor: exec.Cmd.Env).
func FilterEnv(environ []string, keep func(key string) bool) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		if keep(key) {
			out = append(out, kv)
		}
	}
	return out
}

// buildEnv returns the environment for the process: the inherited one (if
// asked for) restricted to what KeepEnv accepts and without what DropEnv
// names, then spec.Env, which wins over inherited values of the same name.
func buildEnv(spec *Spec, environ []string) []string {
	env := make([]string, 0, len(environ)+len(spec.Env))
	if spec.InheritEnv {
		for _, kv := range environ {
			key, _, _ := strings.Cut(kv, "=")
			if spec.KeepEnv != nil && !spec.KeepEnv(key) {
				continue
			}
			if spec.DropEnv != nil && spec.DropEnv(key) {
				continue
			}
			env = append(env, kv)
		}
	}
	return append(env, spec.Env...)
}

func processEnv(spec *Spec) []string { return buildEnv(spec, os.Environ()) }
