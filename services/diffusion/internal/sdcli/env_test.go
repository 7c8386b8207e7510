package sdcli

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
)

// TestSecretsInTheServiceEnvironmentDoNotReachSDCLI is issue 14's "tokens
// in engines' environments" for sd-cli: the diffusion service's tokens and
// GENAILAB_* settings are not in the environment of the sd-cli it runs
// (read from the running child's /proc/PID/environ), while PATH and the
// stand-in's SDSTANDIN_* knobs still are.
func TestSecretsInTheServiceEnvironmentDoNotReachSDCLI(t *testing.T) {
	secrets := map[string]string{
		"GENAILAB_TOKEN":           "tok-a1",
		"GENAILAB_DIFFUSION_TOKEN": "tok-a2",
		"HF_TOKEN":                 "tok-a3",
		"SOME_SERVICE_API_KEY":     "tok-a4",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("SDSTANDIN_STAGE_MS", "3")
	var r recorder
	j := r.job(t, testModel(t), params(2))
	var environ []byte
	j.OnStart = func(pid int) {
		environ, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	}
	if _, err := Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if len(environ) == 0 {
		t.Fatal("no environment read from the running sd-cli")
	}
	for k, v := range secrets {
		if bytes.Contains(environ, []byte(k+"=")) || bytes.Contains(environ, []byte(v)) {
			t.Errorf("%s reached sd-cli", k)
		}
	}
	for _, want := range []string{"PATH=" + os.Getenv("PATH"), "SDSTANDIN_STAGE_MS=3", "SDSTANDIN_BACKTRACE=none"} {
		if !bytes.Contains(append([]byte{0}, append(environ, 0)...), []byte("\x00"+want+"\x00")) {
			t.Errorf("%q missing from sd-cli's environment", want)
		}
	}
}
