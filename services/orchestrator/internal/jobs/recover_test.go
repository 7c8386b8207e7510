package jobs_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// pinRunner is the test runner that also records the host each job was pinned to.
type pinRunner struct {
	*runner
	mu   sync.Mutex
	pins map[string]string
}

func (r *pinRunner) RunPinned(ctx context.Context, id, host string, p *diffusionv1.ImageParams, h cycle.Hooks) (cycle.Outcome, error) {
	r.mu.Lock()
	r.pins[id] = host
	r.mu.Unlock()
	return r.Run(ctx, id, p, h)
}

const (
	queuedSt    = orchestratorv1.JobStatus_JOB_STATUS_QUEUED
	runningSt   = orchestratorv1.JobStatus_JOB_STATUS_RUNNING
	succeededSt = orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED
	failedSt    = orchestratorv1.JobStatus_JOB_STATUS_FAILED
	cancelledSt = orchestratorv1.JobStatus_JOB_STATUS_CANCELLED
)

// pngs counts the images of id in the galleries dirs.
func pngs(t *testing.T, id string, dirs ...string) int {
	t.Helper()
	n := 0
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), id) && strings.HasSuffix(e.Name(), ".png") {
				n++
			}
		}
	}
	return n
}

// Issue 19: on a restart, every job left unfinished was failed, the queued ones (accepted,
// never started) too. They are queued again with their ids and parameters, in their order
// and ahead of a job submitted meanwhile, past the queue's capacity; each runs once and makes
// one image. A running one fails with the reason, an edit (whose uploads its record does not
// keep) too; a cancelled one stays cancelled.
func TestRestartRequeuesQueuedJobsAndFailsTheRunningOne(t *testing.T) {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	params := func(prompt string) *diffusionv1.ImageParams {
		r, err := jobs.Resolve(&diffusionv1.ImageParams{Prompt: prompt, Width: proto.Int32(64), Height: proto.Int32(64)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	edit := params("edit")
	edit.Strength = proto.Float32(0.5) // as Resolve records an edit, its uploads left out
	left := []*orchestratorv1.Job{
		{Id: "j000000000000000100000000", Status: runningSt, Params: params("running"), Host: "local"},
		{Id: "j000000000000000200000000", Status: queuedSt, Params: params("q1"), Host: "local", QueuePosition: 1},
		{Id: "j000000000000000300000000", Status: cancelledSt, Params: params("cancelled"), Host: "local", Error: jobs.ErrCancelled.Error()},
		{Id: "j000000000000000400000000", Status: queuedSt, Params: edit, Host: "local", QueuePosition: 2},
		{Id: "j000000000000000500000000", Status: queuedSt, Params: params("q2"), Host: "b", QueuePosition: 3},
		{Id: "j000000000000000600000000", Status: queuedSt, Params: params("q3"), Host: "local", QueuePosition: 4},
	}
	for _, j := range left {
		if err := db.PutJob(j); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	r := &pinRunner{runner: &runner{release: make(chan struct{}, 100), started: make(chan string, 100)}, pins: map[string]string{}}
	imgs := filepath.Join(dir, "images")
	ev := events.New(db, log)
	m := jobs.New(db, ev, r, jobs.Options{QueueSize: 1, ImageDir: imgs, Host: "local"}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); m.CancelAll(); <-done })

	first := <-r.started // the worker runs the restored ones first, in order
	if first != left[1].Id {
		t.Fatalf("first run %s, want %s", first, left[1].Id)
	}
	// Past the capacity (1) until they are through: a new submission waits for room.
	if _, err := m.Submit(p, ""); err == nil {
		t.Fatal("a submission accepted past the capacity while restored jobs wait")
	}
	for range 3 {
		r.release <- struct{}{}
	}
	for _, j := range []*orchestratorv1.Job{left[1], left[4], left[5]} {
		u, err := m.Wait(context.Background(), j.Id)
		if err != nil || u.Job.Status != succeededSt || u.Result == nil {
			t.Fatalf("restored job %s ended with %v %v", j.Id, u.Job, err)
		}
		if !proto.Equal(u.Job.Params, j.Params) {
			t.Fatalf("restored job %s ran with %v, submitted with %v", j.Id, u.Job.Params, j.Params)
		}
		if n := pngs(t, j.Id, imgs); n != 1 {
			t.Fatalf("job %s has %d images", j.Id, n)
		}
	}
	r.mu.Lock()
	order, pins := strings.Join(r.order, " "), r.pins
	r.mu.Unlock()
	if want := left[1].Id + " " + left[4].Id + " " + left[5].Id; order != want {
		t.Fatalf("run order %s, want %s", order, want)
	}
	if pins[left[4].Id] != "b" || pins[left[1].Id] != "" {
		t.Fatalf("pins %v", pins)
	}
	for _, c := range []struct {
		j      *orchestratorv1.Job
		status orchestratorv1.JobStatus
		reason string
	}{
		{left[0], failedSt, "stopped before it finished; it is not run again"},
		{left[2], cancelledSt, "cancelled"},
		{left[3], failedSt, "uploaded images are not kept"},
	} {
		got, err := db.Job(c.j.Id)
		if err != nil || got.Status != c.status || !strings.Contains(got.Error, c.reason) {
			t.Fatalf("job %s: %v %v, want %s with %q", c.j.Id, got, err, c.status, c.reason)
		}
		if n := pngs(t, c.j.Id, imgs); n != 0 {
			t.Fatalf("job %s (not run) has %d images", c.j.Id, n)
		}
	}
	// Each restored job says so in its events; the failed ones have their failure.
	ev.Flush()
	stored, err := db.LastEvents(100)
	if err != nil {
		t.Fatal(err)
	}
	var requeued, failedEv int
	for _, e := range stored {
		switch {
		case e.Type == orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED && e.Values["restored"] == 1:
			requeued++
		case e.Type == orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED && (e.JobId == left[0].Id || e.JobId == left[3].Id):
			failedEv++
		}
	}
	if requeued != 3 || failedEv != 2 {
		t.Fatalf("events: %d re-queued, %d failed", requeued, failedEv)
	}
}

// fencedStore is a replica's end of a shared etcd store, fenced on key (as the leader
// package fences it).
func fencedStore(t *testing.T, etcd *testenv.EtcdCluster, key string) (*state.Etcd, *clientv3.Client) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return state.NewEtcd(cli, state.EtcdOptions{Prefix: "/jobs-test/", Fenced: true}), cli
}

// lead makes s the leader: key is created again (a new creation revision) and s fenced on it;
// the store fenced on the key before can no longer write.
func lead(t *testing.T, s *state.Etcd, cli *clientv3.Client, key string) {
	ctx := context.Background()
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(ctx, key, "x")
	if err != nil {
		t.Fatal(err)
	}
	s.Fence(key, put.Header.Revision)
}

// Issue 19, the failover: a leader deposed with a job running and two queued behind it
// (its lease passed to another while it was paused, say). The new leader runs the two
// queued ones, once each, and fails the running one. The old leader, still running, finishes
// its job and pops the next: it keeps no image of a job whose start it cannot store (the new
// leader runs that one), so no job id has two images in the galleries together; nothing it
// writes reaches the store. A follower's WatchJob follows the leader's record to its end.
func TestFailoverRunsTheQueuedJobsOnceAndFailsTheRunningOne(t *testing.T) {
	etcd := testenv.StartEtcd(t, 1)
	const key = "/jobs-test/leader"
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	type replica struct {
		store *state.Etcd
		m     *jobs.Manager
		r     *runner
		imgs  string
	}
	start := func(name string, cli *clientv3.Client, s *state.Etcd) *replica {
		rep := &replica{store: s, r: &runner{release: make(chan struct{}, 100), started: make(chan string, 100)}, imgs: filepath.Join(dir, name)}
		db := s.DB()
		rep.m = jobs.New(db, events.New(db, log), rep.r, jobs.Options{ImageDir: rep.imgs, Host: "local"}, log)
		return rep
	}
	run := func(rep *replica) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = rep.m.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); rep.m.CancelAll(); <-done })
	}
	sa, cliA := fencedStore(t, etcd, key)
	sb, cliB := fencedStore(t, etcd, key)
	a, b := start("a", cliA, sa), start("b", cliB, sb)
	lead(t, sa, cliA, key)
	run(a)
	running, err := a.m.Submit(p, "")
	if err != nil {
		t.Fatal(err)
	}
	<-a.r.started
	q1, _ := a.m.Submit(p, "")
	q2, err := a.m.Submit(p, "")
	if err != nil {
		t.Fatal(err)
	}
	// b, a follower, watches the running job: the record's start is stored behind the
	// start, which b sees before the leadership passes.
	ctx, cancelWatch := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelWatch()
	seen := make(chan *orchestratorv1.Job, 16)
	watched := make(chan error, 1)
	go func() {
		watched <- b.m.Watch(ctx, running.Id, false, func(u jobs.Update) error {
			seen <- u.Job
			return nil
		})
	}()
	for j := range seen {
		if j.Status == runningSt {
			break
		}
	}
	// c, another follower, watches a queued one: made on b, its image is in b's gallery;
	// c's watch ends with the record.
	sc, cliC := fencedStore(t, etcd, key)
	c := start("c", cliC, sc)
	cFinal := make(chan jobs.Update, 1)
	cDone := make(chan error, 1)
	go func() {
		cDone <- c.m.Watch(ctx, q2.Id, false, func(u jobs.Update) error {
			if u.Final {
				cFinal <- u
			}
			return nil
		})
	}()
	lead(t, sb, cliB, key) // a is deposed
	run(b)
	for range 2 {
		b.r.release <- struct{}{}
	}
	for _, id := range []string{q1.Id, q2.Id} {
		u, err := b.m.Wait(context.Background(), id)
		if err != nil || u.Job.Status != succeededSt {
			t.Fatalf("queued job %s on the new leader: %v %v", id, u.Job, err)
		}
	}
	// The follower's watch (b led meanwhile) ends with the running job's failure.
	if err := <-watched; err != nil {
		t.Fatalf("the follower's watch: %v", err)
	}
	close(seen)
	var last *orchestratorv1.Job
	for j := range seen {
		last = j
	}
	if last.GetStatus() != failedSt || !strings.Contains(last.GetError(), "not run again") {
		t.Fatalf("the running job on the new leader: %v", last)
	}
	if err := <-cDone; err != nil {
		t.Fatalf("another follower's watch of a job made on the leader: %v", err)
	}
	if u := <-cFinal; u.Job.GetStatus() != succeededSt || u.Job.GetResult() == nil || u.Job.GetResult().GetPng() != nil {
		t.Fatalf("another follower's last update: %v", u.Job)
	}
	// The deposed leader finishes its job and runs the next it had queued.
	a.r.release <- struct{}{}
	if next := <-a.r.started; next != q1.Id {
		t.Fatalf("the deposed leader ran %s next", next)
	}
	a.r.release <- struct{}{}
	u, err := a.m.Wait(context.Background(), q1.Id)
	if err != nil || u.Job.Status != failedSt || !strings.Contains(u.Job.Error, "start could not be stored") {
		t.Fatalf("the deposed leader's next job: %v %v", u.Job, err)
	}
	for _, id := range []string{q1.Id, q2.Id} {
		if n := pngs(t, id, a.imgs, b.imgs); n != 1 {
			t.Fatalf("job %s has %d images in the galleries", id, n)
		}
		j, err := sb.Job(id)
		if err != nil || j.Status != succeededSt {
			t.Fatalf("stored job %s: %v %v", id, j, err)
		}
	}
	if j, err := sb.Job(running.Id); err != nil || j.Status != failedSt {
		t.Fatalf("the stored running job after the deposed leader's end: %v %v", j, err)
	}
}

// A WatchJob that reached a restarted orchestrator before its recovery got the job's
// queued record as if it had ended (the e2e restart test met it). It waits for the
// recovery and follows the job to its end.
func TestWatchBeforeTheRecoveryFollowsTheRestoredJob(t *testing.T) {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "o.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	params, err := jobs.Resolve(p)
	if err != nil {
		t.Fatal(err)
	}
	const id = "j000000000000000100000000"
	if err := db.PutJob(&orchestratorv1.Job{Id: id, Status: queuedSt, Params: params, Host: "local"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	r := &runner{release: make(chan struct{}, 1), started: make(chan string, 1)}
	m := jobs.New(db, events.New(db, log), r, jobs.Options{ImageDir: filepath.Join(dir, "images"), Host: "local"}, log)
	var statuses []orchestratorv1.JobStatus
	watched := make(chan error, 1)
	go func() {
		watched <- m.Watch(context.Background(), id, false, func(u jobs.Update) error {
			statuses = append(statuses, u.Job.Status)
			return nil
		})
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); m.CancelAll(); <-done })
	<-r.started
	r.release <- struct{}{}
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
	if len(statuses) == 0 || statuses[len(statuses)-1] != succeededSt {
		t.Fatalf("the watch saw %v", statuses)
	}
}
