package engine

// Tests on the real stable-diffusion.cpp (../shared/engines/sdcpp, or GENAILAB_SDCPP_DIR) with the
// tiny random-weight model: they skip without it, and fail in CI (GENAILAB_REQUIRE_SDCPP=1).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

var modes = []Mode{ModeCLI, ModeServer}

// startReal starts a real engine in mode with the tiny model.
func startReal(t *testing.T, mode Mode) (*Engine, string) {
	t.Helper()
	sd := testenv.RequireRealSD(t)
	tmp := t.TempDir()
	e := New(Options{
		Binaries:     Binaries{CLI: sd.CLI, Server: sd.Server, LookPath: noPath},
		TempDir:      tmp,
		StallTimeout: 60 * time.Second,
		KillGrace:    2 * time.Second,
	})
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	if _, err := e.Start(context.Background(), Config{Mode: mode, ModelID: "tinysd", Model: sdargs.Model{Path: sd.Model}, Threads: 1}); err != nil {
		t.Fatalf("start real %s engine: %v", mode, err)
	}
	return e, tmp
}

func realParams(steps int, seed int64) imagereq.Params {
	return imagereq.Params{Prompt: "a red fox", Width: 64, Height: 64, Steps: steps, CFGScale: 7.5, Seed: seed, Sampler: "euler_a"}
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	return img
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}

// TestRealGenerateEveryStepInOrder: each sampling step 1..N reaches the sink as its own update,
// stages never go back, and the image is a PNG of the asked size.
func TestRealGenerateEveryStepInOrder(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e, tmp := startReal(t, mode)
			var l progressLog
			res, err := e.Generate(context.Background(), realParams(6, 7), l.sink)
			if err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, res.PNG)
			if img.Bounds().Dx() != 64 || img.Bounds().Dy() != 64 || res.Seed != 7 || res.Demo {
				t.Fatalf("result %dx%d seed %d demo %v", img.Bounds().Dx(), img.Bounds().Dy(), res.Seed, res.Demo)
			}
			ps := l.get()
			checkOrdered(t, ps)
			var steps []int
			var stages []sdprogress.Stage
			for _, p := range ps {
				if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
					stages = append(stages, p.Stage)
				}
				if p.Stage == sdprogress.StageSampling && p.Step > 0 && (len(steps) == 0 || steps[len(steps)-1] != p.Step) {
					steps = append(steps, p.Step)
				}
			}
			if fmt.Sprint(steps) != "[1 2 3 4 5 6]" {
				t.Errorf("sampling steps %v, want each of 1..6 as its own update", steps)
			}
			t.Logf("stages %v", stages)
			if last := ps[len(ps)-1]; last.Stage != sdprogress.StageDone || last.Percent != 100 {
				t.Errorf("last progress %+v", last)
			}
			if in := e.Info(); in.Status != supervisor.StateRunning || in.Health != supervisor.HealthOK || in.Busy || in.LastError != "" {
				t.Errorf("info after the image %+v", in)
			}
			if mode == ModeCLI {
				if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
					t.Errorf("temporary files left: %v", ents)
				}
			}
		})
	}
}

// TestRealSeedReproducibility: the same seed gives the same PNG bytes in one mode on one machine,
// another seed another image, and the two modes give the same pixels (their PNG metadata differ).
func TestRealSeedReproducibility(t *testing.T) {
	imgs := map[Mode][]byte{}
	for _, mode := range modes {
		e, _ := startReal(t, mode)
		a, err := e.Generate(context.Background(), realParams(2, 1234), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Generate(context.Background(), realParams(2, 1234), nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.Generate(context.Background(), realParams(2, 1235), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.PNG, b.PNG) {
			t.Errorf("%s: same seed gave different PNG bytes", mode)
		}
		if samePixels(decodePNG(t, a.PNG), decodePNG(t, c.PNG)) {
			t.Errorf("%s: seeds 1234 and 1235 gave the same image", mode)
		}
		imgs[mode] = a.PNG
		_ = e.Close(context.Background())
	}
	if !samePixels(decodePNG(t, imgs[ModeCLI]), decodePNG(t, imgs[ModeServer])) {
		t.Errorf("sd-cli and sd-server gave different pixels for one seed")
	}
}

// TestRealEverySampler: every sampler the API accepts makes an image on the real engine, with a
// negative prompt and a cfg scale of its own. sd-server keeps the model loaded, so each costs one
// step; sd-cli takes the same --sampling-method flag and is checked with one other sampler.
func TestRealEverySampler(t *testing.T) {
	e, _ := startReal(t, ModeServer)
	for _, s := range imagereq.Samplers {
		p := realParams(1, 3)
		p.Sampler, p.NegativePrompt, p.CFGScale = s, "blurry", 3
		if _, err := e.Generate(context.Background(), p, nil); err != nil {
			t.Errorf("sampler %s: %v", s, err)
		}
	}
	cli, _ := startReal(t, ModeCLI)
	p := realParams(1, 3)
	p.Sampler, p.NegativePrompt, p.CFGScale = "dpm++2m", "blurry", 3
	if _, err := cli.Generate(context.Background(), p, nil); err != nil {
		t.Errorf("sd-cli with dpm++2m: %v", err)
	}
}

// waitStep runs a long generation in the background and returns once sampling reached step 1.
func waitStep(t *testing.T, e *Engine, steps int) (<-chan error, int) {
	t.Helper()
	started := make(chan struct{})
	var once sync.Once
	l := progressLog{on: func(p Progress) {
		if p.Stage == sdprogress.StageSampling && p.Step >= 1 {
			once.Do(func() { close(started) })
		}
	}}
	errc := make(chan error, 1)
	go func() {
		p := realParams(steps, 5)
		p.Width, p.Height = 128, 128
		_, err := e.Generate(context.Background(), p, l.sink)
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("generation ended before sampling: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no sampling step within 60 s")
	}
	return errc, e.Info().PID
}

func TestRealCancelMidSampling(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e, tmp := startReal(t, mode)
			errc, pid := waitStep(t, e, 50)
			ok, err := e.CancelGeneration(context.Background())
			if !ok || err != nil {
				t.Fatalf("cancel: %v %v", ok, err)
			}
			// Regression: a cancel read "sd-cli: context canceled" (the kill's aftermath).
			if err := <-errc; !errors.Is(err, context.Canceled) || err.Error() != "generation cancelled" {
				t.Fatalf("cancelled generation: %v", err)
			}
			if mode == ModeCLI {
				if alive(pid) {
					t.Errorf("sd-cli %d still exists", pid)
				}
				if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
					t.Errorf("temporary files left: %v", ents)
				}
			}
			// A cancel is not a crash.
			in := e.Info()
			if in.Status == supervisor.StateCrashed || in.Health == supervisor.HealthError || in.LastError != "" {
				t.Errorf("after a cancel: status %v health %v lastError %q", in.Status, in.Health, in.LastError)
			}
			// The next job waits for a restarting sd-server instead of failing.
			if _, err := e.Generate(context.Background(), realParams(2, 9), nil); err != nil {
				t.Fatalf("generation after the cancel: %v", err)
			}
			if in := e.Info(); in.Status != supervisor.StateRunning || in.LastError != "" {
				t.Errorf("after the next image: %+v", in)
			}
		})
	}
}

// TestRealEngineKilledMidGeneration: SIGKILL of sd-cli fails the image with the signal; in server
// mode sd-server is restarted and takes the next job.
func TestRealEngineKilledMidGeneration(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e, _ := startReal(t, mode)
			errc, pid := waitStep(t, e, 50)
			if pid == 0 {
				t.Fatal("no engine pid")
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := <-errc
			var ee *enginerr.ExitError
			if !errors.As(err, &ee) || ee.Signal != "SIGKILL" {
				t.Fatalf("killed engine: %v", err)
			}
			if _, err := e.Generate(context.Background(), realParams(2, 9), nil); err != nil {
				t.Fatalf("generation after the kill: %v", err)
			}
		})
	}
}

// TestRealBadModelFiles: a truncated, a garbage and a missing model file are refused with a clear
// error, in both modes, and never reported as a running, healthy engine that cannot make images.
func TestRealBadModelFiles(t *testing.T) {
	sd := testenv.RequireRealSD(t)
	good, err := os.ReadFile(sd.Model)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.gguf")
	garbage := filepath.Join(dir, "garbage.gguf")
	if err := os.WriteFile(truncated, good[:len(good)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 1<<20)
	for i := range junk {
		junk[i] = byte(i*7 + i/13)
	}
	if err := os.WriteFile(garbage, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		for name, path := range map[string]string{"truncated": truncated, "garbage": garbage, "missing": filepath.Join(dir, "missing.gguf")} {
			t.Run(mode.String()+"/"+name, func(t *testing.T) {
				e := New(Options{Binaries: Binaries{CLI: sd.CLI, Server: sd.Server, LookPath: noPath}, TempDir: t.TempDir(), ReadyTimeout: 60 * time.Second})
				defer e.Close(context.Background())
				_, err := e.Start(context.Background(), Config{Mode: mode, Model: sdargs.Model{Path: path}, Threads: 1})
				if err == nil {
					_, err = e.Generate(context.Background(), realParams(2, 1), nil)
				}
				if err == nil {
					t.Fatalf("a %s model made an image", name)
				}
				t.Logf("%s: %v", name, err)
				if in := e.Info(); in.Status == supervisor.StateRunning && in.Health == supervisor.HealthOK && in.LastError == "" {
					t.Errorf("engine reports running and healthy with a %s model: %+v", name, in)
				}
			})
		}
	}
}

// Regression: the memory switches used --clip-on-cpu and --vae-on-cpu, deprecated in this
// sd.cpp for --backend te=cpu / vae=cpu: the current form is used when the binary offers it, and
// the engine runs with it in both modes.
func TestRealMemorySwitchesUseBackendFlag(t *testing.T) {
	sd := testenv.RequireRealSD(t)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := New(Options{Binaries: Binaries{CLI: sd.CLI, Server: sd.Server, LookPath: noPath}, TempDir: t.TempDir()})
			defer e.Close(context.Background())
			mem := sdargs.Memory{ClipOnCPU: true, VAEOnCPU: true}
			if _, err := e.Start(context.Background(), Config{Mode: mode, Model: sdargs.Model{Path: sd.Model}, Threads: 1, Memory: mem}); err != nil {
				t.Fatal(err)
			}
			if mode == ModeServer {
				cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", e.Info().PID))
				if err != nil {
					t.Fatal(err)
				}
				args := strings.Split(string(cmdline), "\x00")
				if !slices.Contains(args, "--backend") || !slices.Contains(args, "te=cpu,vae=cpu") || slices.Contains(args, "--clip-on-cpu") {
					t.Errorf("sd-server arguments %q", args)
				}
			}
			if _, err := e.Generate(context.Background(), realParams(1, 2), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Regression: sd-server's start error showed the tail of its usage text (stdout) instead of
// the line that says why (stderr: "unknown argument: --foo").
func TestRealUnknownFlagErrorNamesTheCause(t *testing.T) {
	sd := testenv.RequireRealSD(t)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := New(Options{Binaries: Binaries{CLI: sd.CLI, Server: sd.Server, LookPath: noPath}, TempDir: t.TempDir(), ExtraArgs: []string{"--foo"}})
			defer e.Close(context.Background())
			_, err := e.Start(context.Background(), Config{Mode: mode, Model: sdargs.Model{Path: sd.Model}, Threads: 1})
			if err == nil {
				_, err = e.Generate(context.Background(), realParams(1, 2), nil)
			}
			if err == nil || !strings.Contains(err.Error(), "unknown argument: --foo") || strings.Contains(err.Error(), "Usage:") {
				t.Fatalf("error %v", err)
			}
			if in := e.Info(); !strings.Contains(in.LastError, "unknown argument: --foo") {
				t.Errorf("lastError %q", in.LastError)
			}
		})
	}
}
