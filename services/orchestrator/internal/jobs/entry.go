package jobs

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// Update is one change of an active job, in the order it happened.
type Update struct {
	// Job is the job right after the change (never with image bytes).
	Job *orchestratorv1.Job
	// At most one of the following says what changed.
	Event    *orchestratorv1.Event
	Progress *diffusionv1.Progress
	Queue    *orchestratorv1.QueuePosition
	// Final is set on the last update; Result (with the PNG) on success, Err otherwise.
	Final  bool
	Result *diffusionv1.ImageResult
	Err    error
}

// maxUpdates bounds an active job's update log; past it, progress-only updates are
// dropped (events and the final update are always kept).
const maxUpdates = 10000

// entry is an active (queued or running) job: its current state and its update log,
// which watchers read by index.
type entry struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	job     *orchestratorv1.Job
	updates []Update
	changed chan struct{}
	final   bool
	// ended is closed with the final update.
	ended chan struct{}
	// admitted is closed once Submit has recorded the job as queued.
	admitted chan struct{}
	// settled is closed once the ended job's record and image are stored.
	settled chan struct{}
	// pin is the host the request asked for ("" lets the orchestrator place it).
	pin string
	// png (and batch, images 1..n-1 of a batch) are the images of a job that succeeded,
	// until it is stored.
	png   []byte
	batch [][]byte
	// params are the job's parameters with an edit's uploads, which its record leaves out.
	params *diffusionv1.ImageParams
	// startStored answers the write of the job's running record (runJob); the worker that
	// runs the job sets it and reads it (finish).
	startStored chan error
	// generation is the diffusion engine's part of the job (cycle.Outcome.Generation),
	// set by the same worker before finish reports it.
	generation time.Duration
}

func newEntry(parent context.Context, j *orchestratorv1.Job) *entry {
	ctx, cancel := context.WithCancel(parent)
	return &entry{ctx: ctx, cancel: cancel, job: j, changed: make(chan struct{}), ended: make(chan struct{}), admitted: make(chan struct{}), settled: make(chan struct{})}
}

// update applies change to the job and appends an update built by mk (which gets the
// snapshot). It returns false when the job had already ended.
func (e *entry) update(change func(j *orchestratorv1.Job), mk func(snap *orchestratorv1.Job) Update) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.final {
		return false
	}
	if change != nil {
		change(e.job)
	}
	u := mk(proto.Clone(e.job).(*orchestratorv1.Job))
	if len(e.updates) >= maxUpdates && u.Progress != nil && !u.Final {
		return true
	}
	e.appendLocked(u)
	return true
}

// mutate changes the job without an update; false when it has ended.
func (e *entry) mutate(change func(j *orchestratorv1.Job)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.final {
		return false
	}
	change(e.job)
	return true
}

// appendFinal appends the last update, built from the job as it is now.
func (e *entry) appendFinal(mk func(snap *orchestratorv1.Job) Update) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.final {
		return
	}
	u := mk(proto.Clone(e.job).(*orchestratorv1.Job))
	u.Final = true
	e.appendLocked(u)
}

func (e *entry) appendLocked(u Update) {
	e.updates = append(e.updates, u)
	if u.Final {
		e.final = true
		close(e.ended)
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// snapshot returns a copy of the job.
func (e *entry) snapshot() *orchestratorv1.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	return proto.Clone(e.job).(*orchestratorv1.Job)
}

// status returns the job's status.
func (e *entry) status() orchestratorv1.JobStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.job.GetStatus()
}

// read waits until there are updates from index from on, and returns them; done is set
// once the final update is among those returned.
func (e *entry) read(ctx context.Context, from int) (ups []Update, done bool, err error) {
	for {
		e.mu.Lock()
		if from < len(e.updates) {
			ups = append([]Update(nil), e.updates[from:]...)
			done = e.final
			e.mu.Unlock()
			return ups, done, nil
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-ch:
		}
	}
}

// length returns the number of updates so far.
func (e *entry) length() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.updates)
}
