// Package sdgen is the generation pipeline shared by the sd-cli and sd-server stand-ins: it
// reads the model header, prints the stage log lines and progress bars in the order and byte
// format of the reference captures, takes realistic or configurable time, renders the images and
// injects failures on demand. It is part of the STAND-INS for stable-diffusion.cpp (see package
// standin), not the real engine.
package sdgen

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Timing says how long each stage takes.
type Timing struct {
	Step      time.Duration // one sampling step; 0 with Realistic: modelled on the captures
	Stage     time.Duration // every other stage; 0 with Realistic: modelled on the captures
	Realistic bool
}

// FaultMode is an injected failure.
type FaultMode string

// Failure modes (SDSTANDIN_FAIL).
const (
	NoFault FaultMode = ""
	// FaultError fails the generation with ERROR lines on stderr: sd-cli exits 1, sd-server
	// marks the job failed (generation_failed).
	FaultError FaultMode = "error"
	// FaultSegv kills the process with SIGSEGV in the middle of sampling.
	FaultSegv FaultMode = "segv"
	// FaultHang stops all output and never finishes.
	FaultHang FaultMode = "hang"
	// FaultNoOutput finishes normally but yields no image data: sd-cli saves nothing and exits
	// 0 (`0/1 images saved`), sd-server completes the job with an empty image list.
	FaultNoOutput FaultMode = "noout"
	// FaultOOM reports a failed CPU buffer allocation the way ggml does, then fails like
	// FaultError.
	FaultOOM FaultMode = "oom"
	// FaultOOMCUDA is FaultOOM with ggml's CUDA wording (`cudaMalloc failed: out of memory`).
	FaultOOMCUDA FaultMode = "oom-cuda"
)

// Fault selects an injected failure.
type Fault struct {
	Mode   FaultMode
	Step   int  // sampling step at which to fail; 0: the middle step
	Decode bool // fail in the VAE decode instead of sampling
	Job    int  // only the Nth generation of the process (1-based); 0: every generation
}

// Config is everything the environment controls.
type Config struct {
	Timing    Timing
	Fault     Fault
	Backtrace bool          // print ggml's gdb backtrace on an abort
	JobTTL    time.Duration // sd-server: how long finished jobs are kept
}

// FromEnv reads the SDSTANDIN_* variables (see package standin). lookPath finds gdb on PATH.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Timing: Timing{Step: 10 * time.Millisecond, Stage: 2 * time.Millisecond},
		JobTTL: 600 * time.Second,
	}
	if v := getenv("SDSTANDIN_REALISTIC"); v != "" && v != "0" {
		c.Timing = Timing{Realistic: true}
	}
	ms := func(name string, dst *time.Duration) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 3.6e6 {
			return fmt.Errorf("%s=%q: want milliseconds, 0..3600000", name, v)
		}
		*dst = time.Duration(f * float64(time.Millisecond))
		return nil
	}
	if err := ms("SDSTANDIN_STEP_MS", &c.Timing.Step); err != nil {
		return c, err
	}
	if err := ms("SDSTANDIN_STAGE_MS", &c.Timing.Stage); err != nil {
		return c, err
	}
	switch m := FaultMode(getenv("SDSTANDIN_FAIL")); m {
	case NoFault, FaultError, FaultSegv, FaultHang, FaultNoOutput, FaultOOM, FaultOOMCUDA:
		c.Fault.Mode = m
	default:
		return c, fmt.Errorf("SDSTANDIN_FAIL=%q: want one of error, segv, hang, noout, oom, oom-cuda", string(m))
	}
	if v := getenv("SDSTANDIN_FAIL_STEP"); v != "" {
		if v == "decode" {
			c.Fault.Decode = true
		} else if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			c.Fault.Step = n
		} else {
			return c, fmt.Errorf("SDSTANDIN_FAIL_STEP=%q: want a step number >= 1 or \"decode\"", v)
		}
	}
	if v := getenv("SDSTANDIN_FAIL_JOB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("SDSTANDIN_FAIL_JOB=%q: want a generation number >= 1", v)
		}
		c.Fault.Job = n
	}
	switch v := strings.ToLower(getenv("SDSTANDIN_BACKTRACE")); v {
	case "":
		_, err := exec.LookPath("gdb")
		c.Backtrace = err == nil
	case "gdb":
		c.Backtrace = true
	case "none":
	default:
		return c, fmt.Errorf("SDSTANDIN_BACKTRACE=%q: want gdb or none", v)
	}
	if v := getenv("SDSTANDIN_JOB_TTL_S"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("SDSTANDIN_JOB_TTL_S=%q: want seconds >= 0", v)
		}
		c.JobTTL = time.Duration(n) * time.Second
	}
	return c, nil
}
