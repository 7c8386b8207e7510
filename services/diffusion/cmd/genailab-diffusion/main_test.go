package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
)

// TestDemoEngineIsASeparateProgram builds the service and the demo engine (the sd.cpp
// stand-ins) side by side, as `make build` does, and checks that -demo-engines generates through
// the stand-in program (not the service), with the demo model it wrote, and that SIGTERM stops it
// cleanly.
func TestDemoEngineIsASeparateProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the service")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "genailab-diffusion")
	build := exec.Command("go", "build", "-o", dir+"/", ".", "../sd-cli-standin", "../sd-server-standin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	grpcFile, httpFile := filepath.Join(dir, "grpc.addr"), filepath.Join(dir, "http.addr")
	cmd := exec.Command(bin, "-grpc-addr", "127.0.0.1:0", "-addr-file", grpcFile, "-http-addr", "127.0.0.1:0",
		"-http-addr-file", httpFile, "-data-dir", filepath.Join(dir, "data"), "-demo-engines", "-demo-dir", dir)
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin", "SDSTANDIN_BACKTRACE=none")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("service did not stop on SIGTERM")
		}
	}()
	read := func(p string) string {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
				return string(b)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s never written; logs:\n%s", p, logs.String())
		return ""
	}
	cc, err := grpc.NewClient(read(grpcFile), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := diffusionv1.NewDiffusionServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start, err := client.Start(ctx, &diffusionv1.StartRequest{Config: &diffusionv1.DiffusionConfig{ModelId: "demo"}})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	if want := filepath.Join(dir, "sd-cli-standin"); !start.Info.DemoEngine || start.Info.BinaryPath != want {
		t.Errorf("engine %q demo %v, want the stand-in program %s", start.Info.BinaryPath, start.Info.DemoEngine, want)
	}
	resp, err := http.Post("http://"+read(httpFile)+"/v1/images/generations", "application/json",
		strings.NewReader(`{"prompt":"a red fox","width":64,"height":128,"steps":2,"seed":42,"sampler":"euler_a"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Image  string `json:"image"`
		Seed   int64  `json:"seed"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Seed != 42 || out.Width != 64 || out.Height != 128 || len(out.Image) < 100 {
		t.Fatalf("generate: %d %v %+v\n%s", resp.StatusCode, err, out.Seed, logs.String())
	}
}

// The production binary carries none of the stand-in: the demo engine is its own program.
func TestProductionBinaryHasNoStandin(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/internal/standin") || strings.HasSuffix(pkg, "/selfstandin") {
			t.Errorf("genailab-diffusion depends on %s", pkg)
		}
	}
}
