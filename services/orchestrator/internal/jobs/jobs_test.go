package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/grpcerr"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/queue"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// runner is a Runner that records the order of jobs and waits for a release per job.
type runner struct {
	mu      sync.Mutex
	order   []string
	release chan struct{}
	started chan string
	fail    error
	// generation is the Outcome's Generation of a job that succeeds.
	generation time.Duration
}

func (r *runner) Run(ctx context.Context, id string, p *diffusionv1.ImageParams, h cycle.Hooks) (cycle.Outcome, error) {
	r.mu.Lock()
	r.order = append(r.order, id)
	r.mu.Unlock()
	out := cycle.Outcome{ReloadDone: closed()}
	if r.started != nil {
		r.started <- id
	}
	h.Progress(&diffusionv1.Progress{Step: 1, TotalSteps: 1})
	select {
	case <-ctx.Done():
		return out, ctx.Err()
	case <-r.release:
	}
	if r.fail != nil {
		return out, r.fail
	}
	out.Result = &diffusionv1.ImageResult{Png: []byte("\x89PNG-" + id), Width: p.GetWidth(), Height: p.GetHeight()}
	out.Generation = r.generation
	return out, nil
}

func closed() chan struct{} { c := make(chan struct{}); close(c); return c }

func setup(t *testing.T, o jobs.Options) (*jobs.Manager, *runner, *state.DB, context.CancelFunc) {
	t.Helper()
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	r := &runner{release: make(chan struct{}, 100), started: make(chan string, 100)}
	o.ImageDir = filepath.Join(dir, "images")
	m := jobs.New(db, events.New(db, log), r, o, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); m.CancelAll(); <-done })
	return m, r, db, cancel
}

var p = &diffusionv1.ImageParams{Prompt: "fox", Width: proto.Int32(64), Height: proto.Int32(64)}

func TestQueueOrderFullAndPositions(t *testing.T) {
	m, r, _, _ := setup(t, jobs.Options{QueueSize: 2})
	first, err := m.Submit(p, "")
	if err != nil {
		t.Fatal(err)
	}
	<-r.started // first is running: the queue is empty again
	a, _ := m.Submit(p, "")
	b, err := m.Submit(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Submit(p, ""); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("third waiting job: %v", err)
	}
	if j, _ := m.Get(b.Id, false); j.QueuePosition != 2 || j.Status != orchestratorv1.JobStatus_JOB_STATUS_QUEUED {
		t.Fatalf("b: %v", j)
	}
	if !m.Busy() {
		t.Fatal("not busy while running")
	}
	for i := 0; i < 3; i++ {
		r.release <- struct{}{}
	}
	last, err := m.Wait(context.Background(), b.Id)
	if err != nil || last.Result == nil {
		t.Fatalf("b ended with %v %v", last, err)
	}
	r.mu.Lock()
	order := append([]string(nil), r.order...)
	r.mu.Unlock()
	if len(order) != 3 || order[0] != first.Id || order[1] != a.Id || order[2] != b.Id {
		t.Fatalf("order %v", order)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Busy() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m.Busy() {
		t.Fatal("busy stuck")
	}
	// The image is on disk and comes back with include_image.
	j, err := m.Get(b.Id, true)
	if err != nil || string(j.Result.Png) != "\x89PNG-"+b.Id || j.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("stored job %v %v", j, err)
	}
}

func TestCancelQueuedAndRunning(t *testing.T) {
	m, r, _, _ := setup(t, jobs.Options{})
	running, _ := m.Submit(p, "")
	<-r.started
	queued, _ := m.Submit(p, "")
	j, err := m.Cancel(queued.Id)
	if err != nil || j.Status != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED {
		t.Fatalf("cancel queued: %v %v", j, err)
	}
	if _, err := m.Cancel(running.Id); err != nil {
		t.Fatal(err)
	}
	last, _ := m.Wait(context.Background(), running.Id)
	if last.Job.Status != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED || !errors.Is(last.Err, jobs.ErrCancelled) {
		t.Fatalf("cancelled running job ended with %v / %v", last.Job.GetStatus(), last.Err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != 1 {
		t.Fatalf("a cancelled queued job ran: %v", r.order)
	}
}

func TestWatchSendsEveryUpdateInOrderAndFailures(t *testing.T) {
	m, r, _, _ := setup(t, jobs.Options{})
	r.fail = errors.New("engine exploded")
	j, _ := m.Submit(p, "")
	var kinds []string
	done := make(chan error, 1)
	// The job is released only once the watcher has seen it start: a watch that begins
	// after the job has ended gets just the final update, as documented.
	watching := make(chan struct{})
	go func() {
		done <- m.Watch(context.Background(), j.Id, true, func(u jobs.Update) error {
			switch {
			case u.Final:
				kinds = append(kinds, "final:"+u.Job.Status.String())
			case u.Event != nil:
				kinds = append(kinds, u.Event.Type.String())
				if u.Event.Type == orchestratorv1.EventType_EVENT_TYPE_JOB_STARTED {
					close(watching)
				}
			case u.Progress != nil:
				kinds = append(kinds, "progress")
			case u.Queue != nil:
				kinds = append(kinds, "queue")
			}
			return nil
		})
	}()
	<-r.started
	<-watching
	r.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "[queue EVENT_TYPE_JOB_QUEUED queue EVENT_TYPE_JOB_STARTED progress final:JOB_STATUS_FAILED]"
	if got := fmtList(kinds); got != want {
		t.Fatalf("updates %s, want %s", got, want)
	}
	got, _ := m.Get(j.Id, false)
	if got.Error != "engine exploded" {
		t.Fatalf("stored error %q", got.Error)
	}
}

func TestRetentionDeletesOldestImages(t *testing.T) {
	m, r, _, _ := setup(t, jobs.Options{Retain: 2})
	var ids []string
	for i := 0; i < 4; i++ {
		j, err := m.Submit(p, "")
		if err != nil {
			t.Fatal(err)
		}
		r.release <- struct{}{}
		if _, err := m.Wait(context.Background(), j.Id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.Id)
	}
	waitIdle(t, m)
	list, _, err := m.List(10, "", orchestratorv1.JobStatus_JOB_STATUS_UNSPECIFIED)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Id != ids[3] || list[1].Id != ids[2] {
		t.Fatalf("kept %v", list)
	}
	if _, err := m.Get(ids[0], false); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("oldest job still there: %v", err)
	}
	if err := m.Delete(ids[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ids[3], true); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("deleted job: %v", err)
	}
	if err := m.Delete("../../etc/passwd"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("path-like id: %v", err)
	}
}

func TestInvalidParamsRefusedAtOnce(t *testing.T) {
	m, _, _, _ := setup(t, jobs.Options{})
	for _, bad := range []*diffusionv1.ImageParams{
		nil, {Prompt: " "}, {Prompt: "x", Width: proto.Int32(100)}, {Prompt: "x", Steps: proto.Int32(151)}, {Prompt: "x", Sampler: "nope"},
	} {
		if _, err := m.Submit(bad, ""); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	if m.QueueLength() != 0 {
		t.Fatal("invalid job queued")
	}
}

func TestLeftoversFromACrashAreFailed(t *testing.T) {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.PutJob(&orchestratorv1.Job{Id: "j00000000000000010000000", Status: orchestratorv1.JobStatus_JOB_STATUS_RUNNING})
	log := slog.New(slog.DiscardHandler)
	m := jobs.New(db, events.New(db, log), &runner{}, jobs.Options{ImageDir: filepath.Join(dir, "img")}, log)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = m.Run(ctx)
	j, err := db.Job("j00000000000000010000000")
	if err != nil || j.Status != orchestratorv1.JobStatus_JOB_STATUS_FAILED || j.Error == "" {
		t.Fatalf("leftover %v %v", j, err)
	}
	_ = os.RemoveAll(dir)
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// waitIdle waits until the worker has finished storing the last job.
func waitIdle(t *testing.T, m *jobs.Manager) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.Busy() {
		if time.Now().After(deadline) {
			t.Fatal("busy stuck")
		}
		time.Sleep(time.Millisecond)
	}
}

// Regression: the orchestrator's own validator checked less than the diffusion service's (no
// negativePrompt length, UTF-8 or NUL check), so such a request was queued, the LLM offloaded
// for it, and only then refused by the diffusion service. It is refused at Submit with
// InvalidArgument: nothing is queued, the runner (the offload cycle) never starts, no event.
func TestNULInNegativePromptIsRefusedBeforeAnyOffload(t *testing.T) {
	m, r, db, _ := setup(t, jobs.Options{})
	for _, bad := range []*diffusionv1.ImageParams{
		{Prompt: "fox", NegativePrompt: "blur\x00ry", Width: proto.Int32(64), Height: proto.Int32(64)},
		{Prompt: "fox", NegativePrompt: "\xff\xfe", Width: proto.Int32(64), Height: proto.Int32(64)},
		{Prompt: "fox", NegativePrompt: strings.Repeat("x", 4001)},
		{Prompt: "fox\x00"},
		{Prompt: "fox", Seed: ptr(int64(1) << 33)},
	} {
		_, err := m.Submit(bad, "")
		if grpcerr.Code(err) != codes.InvalidArgument {
			t.Errorf("%q / %q: %v, want InvalidArgument", bad.GetPrompt(), bad.GetNegativePrompt(), err)
		}
	}
	if m.QueueLength() != 0 {
		t.Fatal("an invalid job was queued")
	}
	select {
	case id := <-r.started:
		t.Fatalf("the cycle ran job %s", id)
	default:
	}
	evs, err := db.EventsAfter(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Fatalf("events emitted for refused requests: %v", evs)
	}
}

// Issue 13: "steps": 0, "width": 0 and "height": 0 were taken for the defaults. Sent as 0
// they are refused at Submit with InvalidArgument and the reason: nothing is queued, the
// cycle (the offload) never runs, no event. Left out, they take the defaults.
func TestExplicitZeroIsRefusedBeforeAnyOffload(t *testing.T) {
	m, r, db, _ := setup(t, jobs.Options{})
	for want, bad := range map[string]*diffusionv1.ImageParams{
		"width must":  {Prompt: "fox", Width: proto.Int32(0), Height: proto.Int32(64)},
		"height must": {Prompt: "fox", Width: proto.Int32(64), Height: proto.Int32(0)},
		"steps must":  {Prompt: "fox", Steps: proto.Int32(0)},
	} {
		_, err := m.Submit(bad, "")
		if grpcerr.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "got 0") {
			t.Errorf("%v: %v, want InvalidArgument %q", bad, err, want)
		}
	}
	if m.QueueLength() != 0 {
		t.Fatal("an invalid job was queued")
	}
	select {
	case id := <-r.started:
		t.Fatalf("the cycle ran job %s", id)
	default:
	}
	if evs, err := db.EventsAfter(0, 100); err != nil || len(evs) != 0 {
		t.Fatalf("events emitted for refused requests: %v %v", evs, err)
	}
	if _, err := m.Submit(&diffusionv1.ImageParams{Prompt: "fox"}, ""); err != nil {
		t.Fatalf("omitted size and steps: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestCancelOfARunningJobAnswersCancelledNotRunning: CancelAndWait (CancelJob) answers once
// the job has ended, so the caller is told CANCELLED for a running job (Cancel answered
// RUNNING), and an ended job unchanged.
func TestCancelOfARunningJobAnswersCancelledNotRunning(t *testing.T) {
	m, r, _, _ := setup(t, jobs.Options{})
	running, _ := m.Submit(p, "")
	<-r.started
	j, err := m.CancelAndWait(context.Background(), running.Id)
	if err != nil || j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED || j.GetFinishedAt() == nil {
		t.Fatalf("cancel of a running job answered %v, %v", j, err)
	}
	again, err := m.CancelAndWait(context.Background(), running.Id)
	if err != nil || again.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_CANCELLED {
		t.Fatalf("cancel of a cancelled job: %v %v", again, err)
	}
	done, _ := m.Submit(p, "")
	<-r.started
	r.release <- struct{}{}
	if _, err := m.Wait(context.Background(), done.Id); err != nil {
		t.Fatal(err)
	}
	if j, err := m.CancelAndWait(context.Background(), done.Id); err != nil || j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("cancel of a finished job: %v %v", j, err)
	}
}

// TestJobsRecordTheResolvedParameters: a request that leaves the size, steps and seed out
// is recorded, run and announced with what it runs with (512x512, 20 steps, a drawn seed),
// not with zeros.
func TestJobsRecordTheResolvedParameters(t *testing.T) {
	m, r, _, _ := setup(t, jobs.Options{})
	j, err := m.Submit(&diffusionv1.ImageParams{Prompt: "a fox"}, "")
	if err != nil {
		t.Fatal(err)
	}
	q := j.GetParams()
	if q.GetWidth() != 512 || q.GetHeight() != 512 || q.GetSteps() != 20 || q.Seed == nil || q.GetSeed() < 0 || q.GetSampler() != "euler_a" {
		t.Fatalf("recorded params %v", q)
	}
	<-r.started
	r.release <- struct{}{}
	var queued *orchestratorv1.Event
	err = m.Watch(context.Background(), j.Id, true, func(u jobs.Update) error {
		if e := u.Event; e != nil && e.GetType() == orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED {
			queued = e
		}
		return nil
	})
	if err != nil || queued == nil {
		t.Fatalf("no queued event: %v", err)
	}
	if queued.GetMessage() != "Job queued (512x512, 20 steps)." || queued.GetValues()["seed"] != float64(q.GetSeed()) {
		t.Fatalf("queued event %q %v", queued.GetMessage(), queued.GetValues())
	}
	got, err := m.Get(j.Id, false)
	if err != nil || !proto.Equal(got.GetParams(), q) || got.GetResult().GetWidth() != 512 {
		t.Fatalf("stored job %v %v", got, err)
	}
}

// TestEventsCarryTheStageTimes: a job's events time its stages around the engine (the
// metrics' genailab_orchestrator_image_stage_seconds): its record stored at submit, the
// runner's generation, the gallery's write; a job that fails carries none of the last two.
func TestEventsCarryTheStageTimes(t *testing.T) {
	m, r, _, _ := setup(t, jobs.Options{})
	r.generation = 42 * time.Millisecond
	values := func(id string) map[orchestratorv1.EventType]map[string]float64 {
		t.Helper()
		got := map[orchestratorv1.EventType]map[string]float64{}
		err := m.Watch(context.Background(), id, true, func(u jobs.Update) error {
			if e := u.Event; e != nil {
				got[e.GetType()] = e.GetValues()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	j, err := m.Submit(p, "")
	if err != nil {
		t.Fatal(err)
	}
	<-r.started
	r.release <- struct{}{}
	v := values(j.Id)
	fin := v[orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED]
	if v[orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED]["record_ms"] <= 0 || fin["generation_ms"] != 42 || fin["store_ms"] <= 0 {
		t.Fatalf("stage values %v", v)
	}
	r.fail = errors.New("engine broke")
	j, err = m.Submit(p, "")
	if err != nil {
		t.Fatal(err)
	}
	<-r.started
	r.release <- struct{}{}
	v = values(j.Id)
	if failed, ok := v[orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED]; !ok || len(failed) != 0 {
		t.Fatalf("failed job's values %v (events %v)", failed, v)
	}
}

// TestImageOfAnotherReplicasGallery failed in CI: a follower read a job from the store
// right after the leader's WatchJob had delivered its end, and found it still running,
// because the record was stored after the final update. The store must hold the job's end
// by the time any watcher hears of it.
func TestFinalUpdateIsDeliveredAfterTheRecordIsStored(t *testing.T) {
	m, r, db, _ := setup(t, jobs.Options{})
	j, err := m.Submit(p, "")
	if err != nil {
		t.Fatal(err)
	}
	<-r.started
	r.release <- struct{}{}
	var stored *orchestratorv1.Job
	err = m.Watch(context.Background(), j.Id, false, func(u jobs.Update) error {
		if u.Final {
			var err error
			stored, err = db.Job(j.Id)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || stored.GetResult() == nil {
		t.Fatalf("the record in the store when the end was delivered: %v, result %v", stored.GetStatus(), stored.GetResult() != nil)
	}
}
