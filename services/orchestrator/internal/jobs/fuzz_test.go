package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// fuzzManager is setup for a fuzz target: one running Manager for all its inputs.
func fuzzManager(f *testing.F, o jobs.Options) (*jobs.Manager, *runner) {
	dir := f.TempDir()
	db, err := state.Open(filepath.Join(dir, "o.db"), state.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	r := &runner{release: make(chan struct{}, 100)}
	o.ImageDir = filepath.Join(dir, "images")
	m := jobs.New(db, events.New(db, log), r, o, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	f.Cleanup(func() { cancel(); m.CancelAll(); <-done })
	return m, r
}

// Issue 14's fault suite, the orchestrator's gRPC edge: SubmitJob's and GenerateImage's
// request, as wire bytes, goes to a real Manager (real state database, real queue). A
// refused request is InvalidArgument with a reason and leaves no job behind; an accepted
// one is queued with the parameters sent, resolved. The corpus is in testdata/fuzz.
func FuzzSubmitJobRequest(f *testing.F) {
	i32 := func(v int32) *int32 { return &v }
	cfg, nan, seed, big := float32(7.5), float32(math.NaN()), int64(42), int64(math.MaxInt64)
	for _, r := range []*orchestratorv1.SubmitJobRequest{
		{Params: &diffusionv1.ImageParams{Prompt: "a lighthouse at dusk", Width: i32(512), Height: i32(512), Steps: i32(20), CfgScale: &cfg, Seed: &seed, Sampler: "euler_a"}},
		{Params: &diffusionv1.ImageParams{Prompt: "fox", Width: i32(64), Height: i32(64)}},
		{},
		{Params: &diffusionv1.ImageParams{}},
		{Params: &diffusionv1.ImageParams{Prompt: "x", Width: i32(0), Height: i32(0), Steps: i32(0)}},
		{Params: &diffusionv1.ImageParams{Prompt: "x", Width: i32(math.MaxInt32), Steps: i32(math.MinInt32)}},
		{Params: &diffusionv1.ImageParams{Prompt: "x", CfgScale: &nan, Seed: &big}},
		{Params: &diffusionv1.ImageParams{Prompt: "nul\x00"}},
		{Params: &diffusionv1.ImageParams{Prompt: strings.Repeat("x", 4001)}},
		{Params: &diffusionv1.ImageParams{Prompt: "x", Sampler: "euler_a; rm -rf /"}},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	m, r := fuzzManager(f, jobs.Options{QueueSize: 1 << 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req orchestratorv1.SubmitJobRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return // gRPC refuses such bytes before any handler runs
		}
		before, _, err := m.List(1, "", orchestratorv1.JobStatus_JOB_STATUS_UNSPECIFIED)
		if err != nil {
			t.Fatal(err)
		}
		j, err := m.Submit(req.GetParams(), "")
		if err != nil {
			st := grpcerr.Classify(err)
			if st.Code != codes.InvalidArgument || strings.TrimSpace(st.Message) == "" {
				t.Fatalf("refusal %v: code %v, message %q", err, st.Code, st.Message)
			}
			after, _, err := m.List(1, "", orchestratorv1.JobStatus_JOB_STATUS_UNSPECIFIED)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) || (len(after) > 0 && after[0].GetId() != before[0].GetId()) {
				t.Fatalf("a refused request left a job: %v", after)
			}
			return
		}
		// The job records the parameters resolved (defaults filled in, a seed drawn when none
		// was sent), which are valid in turn: a round trip.
		want, err := jobs.Resolve(req.GetParams())
		if err != nil {
			t.Fatalf("Submit accepted what Resolve refuses: %v", err)
		}
		if req.GetParams().Seed == nil || req.GetParams().GetSeed() < 0 {
			want.Seed = j.GetParams().Seed
		}
		if !proto.Equal(j.GetParams(), want) || jobs.Validate(j.GetParams()) != nil {
			t.Fatalf("queued params %v, sent %v", j.GetParams(), req.GetParams())
		}
		got, err := m.Get(j.GetId(), false)
		if err != nil || !proto.Equal(got.GetParams(), j.GetParams()) {
			t.Fatalf("stored job %v: %v", got, err)
		}
		// Let the test runner finish it, so the queue stays short.
		r.release <- struct{}{}
		wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := m.Wait(wctx, j.GetId()); err != nil {
			t.Fatalf("wait %s: %v", j.GetId(), err)
		}
	})
}

// FuzzJobID feeds the ids of GetJob, CancelJob, DeleteJob and ListJobs' page token: an
// unknown or malformed id is NotFound or InvalidArgument (a bad request), never another
// error, and never names a file (the images are stored under the id).
func FuzzJobID(f *testing.F) {
	for _, id := range []string{"", "j0000000000000000deadbeef", "j18b2c3d4e5f60718aabbccdd", "../../etc/passwd", "j" + strings.Repeat("0", 24) + "/..", "\x00", "\xff", strings.Repeat("j", 1<<12)} {
		f.Add(id)
	}
	m, _ := fuzzManager(f, jobs.Options{})
	f.Fuzz(func(t *testing.T, id string) {
		ok := func(op string, err error) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s(%q) succeeded on an empty store", op, id)
			}
			if !errors.Is(err, jobs.ErrNotFound) && !errors.Is(err, jobs.ErrBadRequest) && grpcerr.Classify(err).Code != codes.InvalidArgument {
				t.Fatalf("%s(%q): %v", op, id, err)
			}
		}
		_, err := m.Get(id, true)
		ok("Get", err)
		_, err = m.Cancel(id)
		ok("Cancel", err)
		ok("Delete", m.Delete(id))
		if _, _, err := m.List(10, id, orchestratorv1.JobStatus_JOB_STATUS_UNSPECIFIED); err != nil && !errors.Is(err, jobs.ErrBadRequest) {
			t.Fatalf("List page token %q: %v", id, err)
		}
	})
}
