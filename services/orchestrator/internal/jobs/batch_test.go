package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// batchRunner stands in for the cycle (this package stores what it returns): it answers a
// request for n images with n distinct byte strings, seeds seed..seed+n-1, and records the
// init image it was given.
type batchRunner struct{ gotInit chan []byte }

func (r batchRunner) Run(_ context.Context, id string, p *diffusionv1.ImageParams, _ cycle.Hooks) (cycle.Outcome, error) {
	r.gotInit <- p.GetInitImage()
	res := &diffusionv1.ImageResult{Png: []byte("\x89PNG-0-" + id), Seed: p.GetSeed(), Width: p.GetWidth(), Height: p.GetHeight(), Params: p}
	for i := int32(1); i < p.GetN(); i++ {
		res.Batch = append(res.Batch, &diffusionv1.BatchImage{Png: fmt.Appendf(nil, "\x89PNG-%d-%s", i, id), Seed: p.GetSeed() + int64(i), Width: p.GetWidth(), Height: p.GetHeight()})
	}
	return cycle.Outcome{ReloadDone: closed(), Result: res}, nil
}

func onePNG(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 64, 64))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A batch job stores its n images in the gallery and gives them back, in order with their
// seeds; its record and listing carry neither the images nor the edit's upload, which the
// run still gets.
func TestBatchEditJobStoresEveryImageButNotTheUpload(t *testing.T) {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	r := batchRunner{gotInit: make(chan []byte, 1)}
	images := filepath.Join(dir, "images")
	m := jobs.New(db, events.New(db, log), r, jobs.Options{ImageDir: images, Retain: 1}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); m.CancelAll(); <-done })

	init := onePNG(t)
	j, err := m.Submit(&diffusionv1.ImageParams{Prompt: "fox", InitImage: init, Strength: proto.Float32(0.4), N: proto.Int32(3), Seed: proto.Int64(40)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if j.GetParams().InitImage != nil || j.GetParams().GetStrength() != 0.4 || j.GetParams().GetN() != 3 || j.GetParams().GetWidth() != 64 {
		t.Fatalf("recorded params %v", j.GetParams())
	}
	if got := <-r.gotInit; !bytes.Equal(got, init) {
		t.Fatal("the run did not get the init image")
	}
	if _, err := m.Wait(context.Background(), j.Id); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, m)
	check := func(g interface {
		GetResult() *diffusionv1.ImageResult
	}, withImages bool) {
		t.Helper()
		res := g.GetResult()
		if len(res.GetBatch()) != 2 || res.GetSeed() != 40 || res.Batch[0].GetSeed() != 41 || res.Batch[1].GetSeed() != 42 {
			t.Fatalf("result %v", res)
		}
		if res.GetParams().InitImage != nil {
			t.Error("the result's params carry the upload")
		}
		for i, b := range [][]byte{res.GetPng(), res.Batch[0].GetPng(), res.Batch[1].GetPng()} {
			want := fmt.Sprintf("\x89PNG-%d-%s", i, j.Id)
			if withImages && string(b) != want || !withImages && b != nil {
				t.Errorf("image %d: %q (with images %t)", i, b, withImages)
			}
		}
	}
	full, err := m.Get(j.Id, true)
	if err != nil {
		t.Fatal(err)
	}
	check(full, true)
	bare, err := m.Get(j.Id, false)
	if err != nil {
		t.Fatal(err)
	}
	check(bare, false)
	if meta, err := os.ReadFile(filepath.Join(images, j.Id+".json")); err != nil || bytes.Contains(meta, []byte("PNG-1")) {
		t.Errorf("record: %v", err)
	}

	// Retention (1 job) removes every image of the batch with it.
	r2, err := m.Submit(&diffusionv1.ImageParams{Prompt: "fox"}, "")
	if err != nil {
		t.Fatal(err)
	}
	<-r.gotInit
	if _, err := m.Wait(context.Background(), r2.Id); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, m)
	left, _ := filepath.Glob(filepath.Join(images, j.Id+"*"))
	if len(left) != 0 {
		t.Errorf("retention left %v", left)
	}
}
