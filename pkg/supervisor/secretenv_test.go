package supervisor

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSecretsInTheServiceEnvironmentDoNotReachTheEngine is issue 14's
// "tokens in engines' environments": with the EngineEnv allow-list, a
// service's GENAILAB_* settings, its tokens and the operator's other
// secrets stay out of the engine's environment (read from the real child's
// /proc/PID/environ), while PATH, HOME, locale and GPU selection pass, and
// so does what the spec sets explicitly.
func TestSecretsInTheServiceEnvironmentDoNotReachTheEngine(t *testing.T) {
	secrets := map[string]string{
		"GENAILAB_TOKEN":           "tok-1",
		"GENAILAB_LLM_TOKEN":       "tok-2",
		"GENAILAB_GATEWAY_BACKEND": "tok-3",
		"HF_TOKEN":                 "tok-4",
		"AWS_SECRET_ACCESS_KEY":    "tok-5",
		"OPENAI_API_KEY":           "tok-6",
		"DB_PASSWORD":              "tok-7",
		"SOMETHING_ELSE":           "tok-8", // not on the allow-list
		"CUDA_SECRET_TOKEN":        "tok-9", // an allowed prefix does not let a secret through
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	kept := map[string]string{"CUDA_VISIBLE_DEVICES": "1", "LC_ALL": "C.UTF-8", "TZ": "UTC", "GGML_VK_VISIBLE_DEVICES": "0"}
	for k, v := range kept {
		t.Setenv(k, v)
	}
	s := newSup(t, Config{})
	sp := fakeSpec(t, "sleep")
	sp.InheritEnv, sp.KeepEnv = true, EngineEnv
	sp.Env = append(sp.Env, "LLAMA_API_KEY=set-by-the-service")
	if err := s.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(s.Snapshot().Pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	for k, v := range secrets {
		if _, ok := env[k]; ok || bytes.Contains(raw, []byte(v)) {
			t.Errorf("%s reached the engine", k)
		}
	}
	for k, v := range kept {
		if env[k] != v {
			t.Errorf("%s = %q in the engine, want %q", k, env[k], v)
		}
	}
	if env["PATH"] != os.Getenv("PATH") || env["LLAMA_API_KEY"] != "set-by-the-service" {
		t.Errorf("engine environment %q", raw)
	}
}

func TestEngineEnv(t *testing.T) {
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_CTYPE", "TZ", "TMPDIR", "CUDA_VISIBLE_DEVICES",
		"HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "GGML_CUDA_NO_PINNED", "LD_LIBRARY_PATH"} {
		if !EngineEnv(k) {
			t.Errorf("%s dropped", k)
		}
	}
	for _, k := range []string{"GENAILAB_TOKEN", "GENAILAB_DIFFUSION_SD_CLI", "HF_TOKEN", "MY_API_KEY", "GITHUB_TOKEN",
		"SSH_AUTH_SOCK", "AWS_ACCESS_KEY_ID", "CUDA_API_KEY", "LLAMA_ARG_PORT", "PWD", "OLDPWD"} {
		if EngineEnv(k) {
			t.Errorf("%s kept", k)
		}
	}
	got := FilterEnv([]string{"PATH=/bin", "GENAILAB_TOKEN=x", "HOME=/h", "junk"}, EngineEnv)
	if strings.Join(got, " ") != "PATH=/bin HOME=/h" {
		t.Errorf("FilterEnv = %q", got)
	}
}
