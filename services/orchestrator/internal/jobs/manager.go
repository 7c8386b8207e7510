// Package jobs runs the orchestrator's image jobs: every image request (synchronous or
// async) becomes a job that waits in the bounded queue, is run through the offload cycle
// by one worker, and ends with its image kept on disk (a gallery with a retention limit)
// and its record in the database.
package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/queue"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("no such job")

// ErrCancelled is the error of a cancelled job.
var ErrCancelled = errors.New("the job was cancelled")

// Runner runs one image (the offload cycle).
type Runner interface {
	Run(ctx context.Context, jobID string, params *diffusionv1.ImageParams, h cycle.Hooks) (cycle.Outcome, error)
}

// PinnedRunner runs an image on a pinned host ("" lets it be placed). A Runner that
// implements it gets the host a request asked for.
type PinnedRunner interface {
	RunPinned(ctx context.Context, jobID, host string, params *diffusionv1.ImageParams, h cycle.Hooks) (cycle.Outcome, error)
}

// Options configure the manager.
type Options struct {
	// QueueSize bounds the waiting jobs; default 8.
	QueueSize int
	// ImageDir keeps the images and their parameters.
	ImageDir string
	// Retain is how many finished jobs (and images) are kept; default 500.
	Retain int
	// Host names this host on jobs (before a job is placed).
	Host string
	// Workers is how many jobs run at once (one per host at most; the runner places
	// them); default 1.
	Workers int
}

// Manager owns the jobs.
type Manager struct {
	db  *state.DB
	ev  *events.Log
	run Runner
	q   *queue.Queue
	gal gallery
	ids idSource
	o   Options
	log *slog.Logger

	base     context.Context
	submitMu sync.Mutex
	mu       sync.Mutex
	live     map[string]*entry
	busy     atomic.Int32
	// recovered is closed once Run has restored the jobs a previous process left
	// (recover), whether it could or not.
	recovered     chan struct{}
	recoveredOnce sync.Once
}

// New returns a manager; call Run to start its worker.
func New(db *state.DB, ev *events.Log, run Runner, o Options, log *slog.Logger) *Manager {
	if o.QueueSize <= 0 {
		o.QueueSize = 8
	}
	if o.Retain <= 0 {
		o.Retain = 500
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	m := &Manager{db: db, ev: ev, run: run, gal: gallery{dir: o.ImageDir, createTemp: osCreateTemp}, o: o, log: log, live: map[string]*entry{}, base: context.Background(), recovered: make(chan struct{})}
	m.q = queue.New(o.QueueSize, m.positionsChanged)
	return m
}

// Busy reports whether a job is being run (offload, generation and reload included).
func (m *Manager) Busy() bool { return m.busy.Load() > 0 }

// QueuedPins counts the waiting jobs pinned to each host.
func (m *Manager) QueuedPins() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, e := range m.live {
		if e.pin == "" {
			continue
		}
		e.mu.Lock()
		if e.job.Status == orchestratorv1.JobStatus_JOB_STATUS_QUEUED {
			out[e.pin]++
		}
		e.mu.Unlock()
	}
	return out
}

// QueueLength returns the number of waiting jobs.
func (m *Manager) QueueLength() int { return m.q.Len() }

// QueueCapacity returns how many jobs may wait.
func (m *Manager) QueueCapacity() int { return m.q.Capacity() }

// Run restores the jobs left unfinished by a previous process (on a restart, or on a
// failover the dead leader's: recover), then runs queued jobs (Workers at a time, in queue
// order) until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	err := m.recover()
	m.recoveredOnce.Do(func() { close(m.recovered) })
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range m.o.Workers {
		wg.Add(1)
		go func() { defer wg.Done(); m.work(ctx) }()
	}
	wg.Wait()
	return nil
}

func (m *Manager) work(ctx context.Context) {
	for {
		id, err := m.q.Pop(ctx)
		if err != nil {
			return
		}
		m.mu.Lock()
		e := m.live[id]
		m.mu.Unlock()
		if e != nil {
			m.runJob(e)
		}
	}
}

// The reasons of the jobs a previous orchestrator left unfinished that recover fails.
const (
	reasonWasRunning = "the orchestrator running this job stopped before it finished; it is not run again, " +
		"since its image may already have been made (a job never makes two images): submit it again"
	reasonEditLost = "the orchestrator that accepted this edit stopped before it started, and an edit's uploaded " +
		"images are not kept in its record, so it cannot be run again: submit it again"
)

// recover restores the jobs a previous orchestrator (this one before a restart, or the
// dead leader on a failover) left unfinished, as their records in the store say:
//   - queued (accepted, not started): back in the queue with their id and parameters, in
//     their order, ahead of any submitted since (queue.PushFront, even past the capacity);
//     an edit, whose uploads the record does not keep, fails with reasonEditLost;
//   - running: failed with reasonWasRunning. A job's start is stored before its image may
//     be (runJob, finish), so a record still queued has no image anywhere and running it
//     again never makes a second one; a running one may have.
//
// Ended jobs (a cancelled one included) are left as they are.
func (m *Manager) recover() error {
	var left []*orchestratorv1.Job
	err := m.db.AllJobs(func(j *orchestratorv1.Job) error {
		if j.Status == orchestratorv1.JobStatus_JOB_STATUS_QUEUED || j.Status == orchestratorv1.JobStatus_JOB_STATUS_RUNNING {
			left = append(left, j)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the jobs left unfinished: %w", err)
	}
	m.submitMu.Lock()
	defer m.submitMu.Unlock()
	var restored []*entry
	for _, j := range left {
		if m.entry(j.Id) != nil {
			continue // already live here
		}
		if reason := unrunnable(j); reason != "" {
			if err := m.failStored(j, reason); err != nil {
				return err
			}
			continue
		}
		j.QueuePosition = 0
		e := newEntry(m.base, j)
		e.params = j.GetParams()
		// The record keeps the pin as the job's host until it is placed (Submit).
		if j.GetHost() != m.o.Host {
			e.pin = j.GetHost()
		}
		close(e.admitted)
		restored = append(restored, e)
	}
	if len(restored) == 0 {
		return nil
	}
	ids := make([]string, len(restored))
	m.mu.Lock()
	for i, e := range restored {
		ids[i] = e.job.GetId()
		m.live[ids[i]] = e
	}
	m.mu.Unlock()
	m.q.PushFront(ids...)
	for i, e := range restored {
		j := e.snapshot()
		ev := m.ev.Emit(orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, j.GetHost(), j.GetId(),
			fmt.Sprintf("Job queued again at position %d: the orchestrator that accepted it stopped before it started.", i+1),
			map[string]float64{"queue_length": float64(m.q.Len()), "restored": 1})
		e.update(nil, func(s *orchestratorv1.Job) Update { return Update{Job: s, Event: ev} })
	}
	m.log.Info("jobs left queued by a previous orchestrator queued again", "jobs", len(restored))
	return nil
}

// unrunnable is why a job left unfinished cannot run again, "" when it can.
func unrunnable(j *orchestratorv1.Job) string {
	switch {
	case j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_RUNNING:
		return reasonWasRunning
	case j.GetParams() == nil:
		return "the job's record has no parameters, so it cannot be run again: submit it again"
	case j.GetParams().Strength != nil:
		// Resolve sets the strength of every edit, and only of an edit.
		return reasonEditLost
	}
	return ""
}

// failStored ends a stored job that is not live as failed with reason, with its event.
func (m *Manager) failStored(j *orchestratorv1.Job, reason string) error {
	j.Status = orchestratorv1.JobStatus_JOB_STATUS_FAILED
	j.Error = reason
	j.FinishedAt = timestamppb.Now()
	j.QueuePosition = 0
	if err := m.db.PutJob(j); err != nil {
		return fmt.Errorf("fail job %s left unfinished: %w", j.GetId(), err)
	}
	m.ev.Emit(orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED, j.GetHost(), j.GetId(), "Job failed: "+reason, nil)
	return nil
}

// Submit validates params and queues a job with them resolved (Resolve: the job records
// and runs 512x512, 20 steps and a drawn seed for a request that left them out). It fails
// with queue.ErrFull when the queue is full (nothing is stored then).
func (m *Manager) Submit(params *diffusionv1.ImageParams, host string) (*orchestratorv1.Job, error) {
	params, err := Resolve(params)
	if err != nil {
		return nil, err
	}
	// Ids are taken and jobs queued under one lock, so that the queue's order is the ids'
	// (submission) order.
	m.submitMu.Lock()
	j := &orchestratorv1.Job{
		Id: m.ids.next(), Status: orchestratorv1.JobStatus_JOB_STATUS_QUEUED,
		Params: imagereq.WithoutUploads(params), CreatedAt: timestamppb.Now(), Host: cmp.Or(host, m.o.Host),
	}
	e := newEntry(m.base, j)
	e.pin, e.params = host, params
	m.mu.Lock()
	m.live[j.Id] = e
	m.mu.Unlock()
	recordStart := time.Now()
	if err := m.db.PutJob(j); err != nil {
		m.submitMu.Unlock()
		m.forget(j.Id)
		return nil, fmt.Errorf("store job: %w", err)
	}
	if _, err := m.q.Push(j.Id); err != nil {
		m.submitMu.Unlock()
		m.forget(j.Id)
		_ = m.db.DeleteJob(j.Id)
		return nil, err
	}
	m.submitMu.Unlock()
	recorded := time.Since(recordStart)
	ev := m.ev.Emit(orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, j.Host, j.Id,
		fmt.Sprintf("Job queued (%dx%d, %d steps).", params.GetWidth(), params.GetHeight(), params.GetSteps()),
		map[string]float64{"queue_length": float64(m.q.Len()), "width": float64(params.GetWidth()), "height": float64(params.GetHeight()),
			"steps": float64(params.GetSteps()), "seed": float64(params.GetSeed()), "record_ms": ms(recorded)})
	e.update(nil, func(s *orchestratorv1.Job) Update { return Update{Job: s, Event: ev} })
	close(e.admitted)
	return e.snapshot(), nil
}

func (m *Manager) forget(id string) {
	m.mu.Lock()
	delete(m.live, id)
	m.mu.Unlock()
}

// positionsChanged gives every waiting job its new position.
func (m *Manager) positionsChanged(ids []string) {
	m.mu.Lock()
	entries := make([]*entry, len(ids))
	for i, id := range ids {
		entries[i] = m.live[id]
	}
	m.mu.Unlock()
	for i, e := range entries {
		if e == nil {
			continue
		}
		pos, n := int32(i+1), int32(len(ids))
		e.mu.Lock()
		same := e.job.QueuePosition == pos || e.job.Status != orchestratorv1.JobStatus_JOB_STATUS_QUEUED
		e.mu.Unlock()
		if same {
			continue
		}
		e.update(func(j *orchestratorv1.Job) { j.QueuePosition = pos }, func(s *orchestratorv1.Job) Update {
			return Update{Job: s, Queue: &orchestratorv1.QueuePosition{Position: pos, QueueLength: n}}
		})
	}
}

func (m *Manager) runJob(e *entry) {
	<-e.admitted // its "queued" event comes first
	m.busy.Add(1)
	defer m.busy.Add(-1)
	id := e.snapshot().GetId()
	if e.ctx.Err() != nil {
		m.finish(e, nil, false, ErrCancelled)
		return
	}
	ok := e.update(func(j *orchestratorv1.Job) {
		j.Status = orchestratorv1.JobStatus_JOB_STATUS_RUNNING
		j.StartedAt = timestamppb.Now()
		j.QueuePosition = 0
	}, func(s *orchestratorv1.Job) Update {
		return Update{Job: s, Queue: &orchestratorv1.QueuePosition{Position: 0, QueueLength: int32(m.q.Len())}}
	})
	if !ok {
		return
	}
	// The running state is stored behind the job's start, off its path (a commit, two
	// fsyncs with bbolt, a raft round with etcd): finish waits for it before the image may
	// be stored, so that a record still queued after a crash has no image anywhere and is
	// run again, while a running one is failed (recover).
	snap := e.snapshot()
	startStored := make(chan error, 1)
	e.startStored = startStored
	go func() { startStored <- m.db.PutJob(snap) }()
	ev := m.ev.Emit(orchestratorv1.EventType_EVENT_TYPE_JOB_STARTED, snap.GetHost(), id, "Job started.", nil)
	e.update(nil, func(s *orchestratorv1.Job) Update { return Update{Job: s, Event: ev} })
	hooks := cycle.Hooks{
		Event: func(ev *orchestratorv1.Event) {
			e.update(nil, func(s *orchestratorv1.Job) Update { return Update{Job: s, Event: ev} })
		},
		Progress: func(p *diffusionv1.Progress) {
			// The job's own record keeps the progress without the preview image: the update
			// carries it once, the snapshots of every later update do not.
			rec := p
			if p.GetPreview() != nil {
				rec = proto.CloneOf(p)
				rec.Preview = nil
			}
			e.update(func(j *orchestratorv1.Job) { j.Progress = rec }, func(s *orchestratorv1.Job) Update { return Update{Job: s, Progress: p} })
		},
		Placed: func(host string) {
			e.update(func(j *orchestratorv1.Job) { j.Host = host }, func(s *orchestratorv1.Job) Update { return Update{Job: s} })
		},
	}
	var out cycle.Outcome
	var err error
	if pr, ok := m.run.(PinnedRunner); ok {
		out, err = pr.RunPinned(e.ctx, id, e.pin, e.params, hooks)
	} else {
		out, err = m.run.Run(e.ctx, id, e.params, hooks)
	}
	if e.ctx.Err() != nil && err != nil {
		err = ErrCancelled
	}
	e.generation = out.Generation
	m.finish(e, out.Result, out.Offloaded, err)
	// The image is delivered; the next job waits for the LLM to be back.
	<-out.ReloadDone
}

// finish ends a job: stores its image (durably, before the job may say it succeeded: an
// image that cannot be stored fails the job with the reason), its record, emits its last
// event, delivers the final update and applies the retention limit.
func (m *Manager) finish(e *entry, res *diffusionv1.ImageResult, offloaded bool, err error) {
	if e.startStored != nil {
		// Its end is stored after its start, and its image only once the start is.
		if serr := <-e.startStored; serr != nil && err == nil {
			err = fmt.Errorf("the job's start could not be stored, so its image is not kept (an orchestrator restarted on this store would run it again): %w", serr)
			res = nil
		}
		e.startStored = nil
	}
	now := timestamppb.Now()
	var rec *diffusionv1.ImageResult
	var values map[string]float64
	if err == nil && res != nil {
		rec = resultRecord(res)
		storeStart := time.Now()
		serr := m.saveImage(e, res, rec, offloaded, now)
		values = map[string]float64{"generation_ms": ms(e.generation), "store_ms": ms(time.Since(storeStart))}
		if serr != nil {
			m.log.Error("image not stored: the job fails", "job", e.snapshot().GetId(), "error", serr)
			err = fmt.Errorf("the image was generated but could not be stored: %w", serr)
			res = nil
		}
	}
	var typ orchestratorv1.EventType
	var msg string
	var stored *orchestratorv1.Job
	e.mutate(func(j *orchestratorv1.Job) {
		switch {
		case err == nil && res != nil:
			succeed(j, rec, offloaded, now)
			typ, msg = orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED, fmt.Sprintf("Job finished: %dx%d image, seed %d.", res.GetWidth(), res.GetHeight(), res.GetSeed())
			e.png = res.GetPng()
			e.batch = batchPNGs(res)
		case errors.Is(err, ErrCancelled) || errors.Is(err, context.Canceled):
			end(j, offloaded, now)
			j.Status = orchestratorv1.JobStatus_JOB_STATUS_CANCELLED
			j.Error = ErrCancelled.Error()
			typ, msg = orchestratorv1.EventType_EVENT_TYPE_JOB_CANCELLED, "Job cancelled."
		default:
			if err == nil {
				err = errors.New("no image was produced")
			}
			end(j, offloaded, now)
			j.Status = orchestratorv1.JobStatus_JOB_STATUS_FAILED
			j.Error = err.Error()
			typ, msg = orchestratorv1.EventType_EVENT_TYPE_JOB_FAILED, "Job failed: "+err.Error()
		}
		stored = proto.Clone(j).(*orchestratorv1.Job)
	})
	if stored == nil {
		return // already finished
	}
	defer close(e.settled)
	// Its record is stored before its end is delivered: a client told the job is done may
	// read it from any replica (a follower reads the store), and must find it done. The
	// job's events are written behind it (package events); they are stored before the job
	// is reported done too: the record goes in the transaction of its last event.
	if stored.Status != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		values = nil
	}
	ev, serr := m.ev.EmitWithJob(typ, stored.Host, stored.Id, msg, values, stored)
	if serr != nil {
		m.log.Warn("job record not stored", "job", stored.GetId(), "error", serr)
	}
	if stored.Status == orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		err = nil
	} else {
		res = nil
	}
	e.appendFinal(func(s *orchestratorv1.Job) Update { return Update{Job: s, Event: ev, Result: res, Err: err} })
	m.applyRetention()
	m.forget(stored.Id)
	e.cancel()
}

// saveImage stores the image of a job that is about to succeed (res), with its record as it
// will be once succeeded (rec: resultRecord). A job that has already ended stores nothing.
func (m *Manager) saveImage(e *entry, res, rec *diffusionv1.ImageResult, offloaded bool, now *timestamppb.Timestamp) error {
	e.mu.Lock()
	if e.final {
		e.mu.Unlock()
		return nil
	}
	j := proto.Clone(e.job).(*orchestratorv1.Job)
	e.mu.Unlock()
	succeed(j, rec, offloaded, now)
	return m.gal.save(j, res.GetPng(), batchPNGs(res))
}

// ms is d in milliseconds, the unit of the events' durations.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// resultRecord is res as a job's record keeps it: without its images' PNG bytes (they live
// in the gallery) and its parameters' uploads. The bytes are left out of the copy rather
// than copied and dropped (a 1024×1024 PNG is megabytes): they are detached from res while
// it is cloned, which is safe because finish alone holds res until the final update.
func resultRecord(res *diffusionv1.ImageResult) *diffusionv1.ImageResult {
	png, batch := res.Png, batchPNGs(res)
	res.Png = nil
	for _, b := range res.Batch {
		b.Png = nil
	}
	rec := proto.CloneOf(res)
	res.Png = png
	for i, b := range res.Batch {
		b.Png = batch[i]
	}
	rec.Params = imagereq.WithoutUploads(rec.Params)
	return rec
}

// batchPNGs are the PNGs of images 1..n-1 of a batch result.
func batchPNGs(res *diffusionv1.ImageResult) [][]byte {
	var out [][]byte
	for _, b := range res.GetBatch() {
		out = append(out, b.GetPng())
	}
	return out
}

// end sets what every finished job records.
func end(j *orchestratorv1.Job, offloaded bool, now *timestamppb.Timestamp) {
	j.FinishedAt = now
	j.QueuePosition = 0
	j.Offloaded = offloaded
}

// succeed marks j succeeded with rec, the result as its record keeps it (resultRecord),
// which j then holds: rec is not changed after.
func succeed(j *orchestratorv1.Job, rec *diffusionv1.ImageResult, offloaded bool, now *timestamppb.Timestamp) {
	end(j, offloaded, now)
	j.Status = orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED
	j.Result = rec
}

// applyRetention deletes the oldest finished jobs beyond the limit, with their images.
func (m *Manager) applyRetention() {
	var finished []string
	_ = m.db.AllJobs(func(j *orchestratorv1.Job) error {
		switch j.Status {
		case orchestratorv1.JobStatus_JOB_STATUS_QUEUED, orchestratorv1.JobStatus_JOB_STATUS_RUNNING:
		default:
			finished = append(finished, j.Id)
		}
		return nil
	})
	for i := 0; i < len(finished)-m.o.Retain; i++ {
		if err := m.gal.remove(finished[i]); err != nil {
			m.log.Warn("retention: remove image", "job", finished[i], "error", err)
			continue
		}
		_ = m.db.DeleteJob(finished[i])
	}
}
