package jobs_test

// Regression tests of issue 14 item 5: a disk that fills while an async job's image is
// saved made the job SUCCEEDED without its image (GET ?includeImage=true answered 500).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// pngRunner produces, for each job, the next image of sizes (bytes of a fake PNG).
type pngRunner struct{ sizes chan int }

func (r pngRunner) Run(ctx context.Context, id string, p *diffusionv1.ImageParams, h cycle.Hooks) (cycle.Outcome, error) {
	n := <-r.sizes
	png := append([]byte("\x89PNG"), bytes.Repeat([]byte{'x'}, n-4)...)
	return cycle.Outcome{ReloadDone: closed(), Result: &diffusionv1.ImageResult{Png: png, Width: 64, Height: 64, Seed: 7}}, nil
}

// galleryManager runs a manager whose images go to imageDir (its database elsewhere).
func galleryManager(t *testing.T, imageDir string, seam func(*jobs.Manager)) (*jobs.Manager, pngRunner, *state.DB) {
	t.Helper()
	db, err := state.Open(filepath.Join(t.TempDir(), "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	r := pngRunner{sizes: make(chan int, 10)}
	m := jobs.New(db, events.New(db, log), r, jobs.Options{ImageDir: imageDir}, log)
	if seam != nil {
		seam(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); m.CancelAll(); <-done })
	return m, r, db
}

// runImage submits a job whose image has size bytes and returns its final update, once
// its record is stored.
func runImage(t *testing.T, m *jobs.Manager, r pngRunner, size int) jobs.Update {
	t.Helper()
	r.sizes <- size
	j, err := m.Submit(&diffusionv1.ImageParams{Prompt: "fox", Width: proto.Int32(64), Height: proto.Int32(64)}, "")
	if err != nil {
		t.Fatal(err)
	}
	last, err := m.Wait(context.Background(), j.Id)
	if err != nil {
		t.Fatal(err)
	}
	waitIdle(t, m)
	return last
}

// checkFailedForSpace checks that a job whose image could not be stored failed, says
// why, and left nothing in the gallery.
func checkFailedForSpace(t *testing.T, m *jobs.Manager, db *state.DB, dir string, last jobs.Update, want string) {
	t.Helper()
	id := last.Job.GetId()
	if last.Job.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_FAILED || last.Result != nil || last.Err == nil {
		t.Fatalf("final update: status %v, result %v, err %v; want FAILED without a result", last.Job.GetStatus(), last.Result != nil, last.Err)
	}
	if !strings.Contains(last.Err.Error(), want) {
		t.Fatalf("error %q does not name %s", last.Err, want)
	}
	// GET ?includeImage=true: the job, failed, not a 500.
	got, err := m.Get(id, true)
	if err != nil {
		t.Fatalf("get with image: %v", err)
	}
	if got.Status != orchestratorv1.JobStatus_JOB_STATUS_FAILED || !strings.Contains(got.Error, want) || got.GetResult() != nil {
		t.Fatalf("stored job: %v %q result %v", got.Status, got.Error, got.GetResult())
	}
	if rec, err := db.Job(id); err != nil || rec.Status != orchestratorv1.JobStatus_JOB_STATUS_FAILED {
		t.Fatalf("database record: %v %v", rec.GetStatus(), err)
	}
	evs, _ := db.LastEvents(10)
	for _, ev := range evs {
		if ev.JobId == id && ev.Type == orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED {
			t.Fatal("a JOB_FINISHED event for a job without its image")
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), id) || strings.HasPrefix(e.Name(), "."+id) {
			t.Fatalf("left in the gallery: %s", e.Name())
		}
	}
}

// fullDisk writes while the disk (room, shared by its files, which the gallery writes in
// parallel: under mu) has room, then fails as a full disk does; or it fails its Sync.
type fullDisk struct {
	*os.File
	mu      *sync.Mutex
	room    *int
	syncErr error
}

func (f *fullDisk) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(p) <= *f.room {
		*f.room -= len(p)
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:*f.room])
	*f.room = 0
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

func (f *fullDisk) Sync() error {
	if f.syncErr != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: f.syncErr}
	}
	return f.File.Sync()
}

func TestDiskFullWhileSavingImageFailsTheJobNotSucceededWithoutImage(t *testing.T) {
	for _, c := range []struct {
		name    string
		room    int
		syncErr error
		want    string
	}{
		{"image write ENOSPC", 1000, nil, "ENOSPC"},
		{"record write ENOSPC", 4096 + 20, nil, "ENOSPC"}, // the PNG or its JSON record fits, not both
		{"fsync EIO", 1 << 20, syscall.EIO, "input/output error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "images")
			room, mu := c.room, &sync.Mutex{}
			m, r, db := galleryManager(t, dir, func(m *jobs.Manager) {
				jobs.SetCreateTemp(m, func(dir, pattern string) (jobs.TempFile, error) {
					f, err := os.CreateTemp(dir, pattern)
					if err != nil {
						return nil, err
					}
					return &fullDisk{File: f, mu: mu, room: &room, syncErr: c.syncErr}, nil
				})
			})
			checkFailedForSpace(t, m, db, dir, runImage(t, m, r, 4096), c.want)
		})
	}
}

// The same on a real full file system: a 64 KiB tmpfs (root only; skipped elsewhere).
func TestDiskFullWhileSavingImageOnRealTmpfs(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	m, r, db := galleryManager(t, dir, nil)
	last := runImage(t, m, r, 256<<10) // four times the file system
	checkFailedForSpace(t, m, db, dir, last, "ENOSPC")
	t.Logf("error on a full tmpfs: %v", last.Err)
	// An image that fits is stored and served.
	ok := runImage(t, m, r, 2048)
	if ok.Job.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("an image that fits: %v %v", ok.Job.GetStatus(), ok.Err)
	}
	got, err := m.Get(ok.Job.GetId(), true)
	if err != nil || len(got.GetResult().GetPng()) != 2048 {
		t.Fatalf("stored image: %d bytes, %v", len(got.GetResult().GetPng()), err)
	}
	if _, err := os.Stat(filepath.Join(dir, ok.Job.GetId()+".json")); err != nil {
		t.Fatal(fmt.Errorf("record next to the image: %w", err))
	}
	if errors.Is(last.Err, context.Canceled) {
		t.Fatal("a full disk is not a cancel")
	}
}
