package sdgen

import (
	"testing"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"SDSTANDIN_BACKTRACE": "none"}))
	if err != nil || c.Timing.Step != 10*time.Millisecond || c.Timing.Stage != 2*time.Millisecond || c.Timing.Realistic || c.Fault.Mode != NoFault || c.Backtrace || c.JobTTL != 600*time.Second {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	c, err = FromEnv(env(map[string]string{"SDSTANDIN_REALISTIC": "1", "SDSTANDIN_STEP_MS": "2.5", "SDSTANDIN_FAIL": "oom",
		"SDSTANDIN_FAIL_STEP": "decode", "SDSTANDIN_FAIL_JOB": "3", "SDSTANDIN_BACKTRACE": "gdb", "SDSTANDIN_JOB_TTL_S": "5"}))
	if err != nil || !c.Timing.Realistic || c.Timing.Step != 2500*time.Microsecond || c.Timing.Stage != 0 ||
		c.Fault != (Fault{Mode: FaultOOM, Decode: true, Job: 3}) || !c.Backtrace || c.JobTTL != 5*time.Second {
		t.Errorf("set: %+v, %v", c, err)
	}
	for k, v := range map[string]string{"SDSTANDIN_STEP_MS": "fast", "SDSTANDIN_STAGE_MS": "-1", "SDSTANDIN_FAIL": "boom",
		"SDSTANDIN_FAIL_STEP": "0", "SDSTANDIN_FAIL_JOB": "x", "SDSTANDIN_BACKTRACE": "lldb", "SDSTANDIN_JOB_TTL_S": "-3"} {
		if _, err := FromEnv(env(map[string]string{k: v})); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}

// The realistic model reproduces the captured CPU timings.
func TestRealisticTiming(t *testing.T) {
	r := Timing{Realistic: true}
	near := func(what string, got time.Duration, want float64) {
		if d := got.Seconds() - want; d < -0.01 || d > 0.01 {
			t.Errorf("%s = %v, want %.3fs", what, got, want)
		}
	}
	near("64x64 step", r.StepTime(64, 64, false), 0.022)
	near("512x512 step", r.StepTime(512, 512, false), 0.68)
	near("first step", r.StepTime(64, 64, true), 0.222)
	near("128x128 decode", r.Decode(128, 128), 0.38)
	near("load", r.Load(sdmodel.TinySD.TextEncoder), 0.2)
	if r.StepTime(1024, 1024, false) <= r.StepTime(512, 512, false) {
		t.Error("bigger images must not be faster")
	}
	f := Timing{Step: 7 * time.Millisecond, Stage: time.Millisecond}
	if f.StepTime(512, 512, true) != 7*time.Millisecond || f.Decode(512, 512) != time.Millisecond || f.Header() != time.Millisecond {
		t.Error("explicit durations must win")
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[int]int{1: 64, 60: 64, 64: 64, 72: 128, 100: 128, 512: 512} {
		if got := Align(in); got != want {
			t.Errorf("Align(%d) = %d", in, got)
		}
	}
	if s, ok := CanonicalScheduler("normal"); !ok || s != "discrete" {
		t.Error("normal is discrete")
	}
	if _, ok := CanonicalScheduler("foo"); ok || ValidSampler("foo") || !ValidSampler("dpm++2m") {
		t.Error("names")
	}
	for _, s := range Samplers {
		if samplerTitle[s] == "" {
			t.Errorf("no title for %s", s)
		}
	}
}
