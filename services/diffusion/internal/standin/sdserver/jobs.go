package sdserver

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Job states, as sd-server names them.
const (
	statusQueued     = "queued"
	statusGenerating = "generating"
	statusCompleted  = "completed"
	statusFailed     = "failed"
	statusCancelled  = "cancelled"
)

// maxPending is sd-server's bound on queued + generating jobs.
const maxPending = 64

type job struct {
	id                          string
	status                      string
	created, started, completed int64
	req                         genRequest
	images                      []string // base64
	errCode, errMessage         string
}

// jobs is sd-server's AsyncJobManager: every job by id, the queue of queued ids, and the ids
// of expired jobs (410 until they are forgotten).
type jobs struct {
	mu      sync.Mutex
	byID    map[string]*job
	queue   []string
	expired map[string]int64 // id -> unix time until which it answers 410
	nextID  uint32
	ttl     time.Duration
	now     func() time.Time
	wake    chan struct{}
}

func newJobs(ttl time.Duration, now func() time.Time) *jobs {
	return &jobs{byID: map[string]*job{}, expired: map[string]int64{}, ttl: ttl, now: now, wake: make(chan struct{}, 1)}
}

// purge expires finished jobs older than the TTL (lock held).
func (m *jobs) purge() {
	now := m.now().Unix()
	for id, until := range m.expired {
		if until <= now {
			delete(m.expired, id)
		}
	}
	ttl := int64(m.ttl / time.Second)
	for id, j := range m.byID {
		if j.completed != 0 && now-j.completed >= ttl {
			m.expired[id] = now + max(ttl, 60)
			delete(m.byID, id)
		}
	}
}

// errQueueFull is returned by submit when maxPending jobs are queued or generating.
var errQueueFull = fmt.Errorf("job queue is full")

func (m *jobs) submit(req genRequest) (*job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.purge()
	pending := 0
	for _, j := range m.byID {
		if j.status == statusQueued || j.status == statusGenerating {
			pending++
		}
	}
	if pending >= maxPending {
		return nil, errQueueFull
	}
	now := m.now().Unix()
	j := &job{id: fmt.Sprintf("job_%x_%08x", now, m.nextID), status: statusQueued, created: now, req: req}
	m.nextID++
	m.byID[j.id] = j
	m.queue = append(m.queue, j.id)
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return j, nil
}

// take waits for the first queued job and marks it generating; nil when ctx ends.
func (m *jobs) take(ctx context.Context) *job {
	for {
		m.mu.Lock()
		if len(m.queue) > 0 {
			j := m.byID[m.queue[0]]
			m.queue = m.queue[1:]
			j.status, j.started = statusGenerating, m.now().Unix()
			m.mu.Unlock()
			return j
		}
		m.mu.Unlock()
		select {
		case <-m.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

func (m *jobs) finish(j *job, images []string, errMessage string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j.completed = m.now().Unix()
	if errMessage != "" {
		j.status, j.errCode, j.errMessage = statusFailed, "generation_failed", errMessage
		return
	}
	j.status, j.images = statusCompleted, images
}

// lookup finds a job; expired is true for a job that existed but expired.
func (m *jobs) lookup(id string) (view map[string]any, expired bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.purge()
	if j, ok := m.byID[id]; ok {
		return m.view(j), false
	}
	_, expired = m.expired[id]
	return nil, expired
}

// cancel cancels a queued job. generating is true when the job is generating (409).
func (m *jobs) cancel(id string) (view map[string]any, expired, generating bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.purge()
	j, ok := m.byID[id]
	if !ok {
		_, expired = m.expired[id]
		return nil, expired, false
	}
	switch j.status {
	case statusGenerating:
		return nil, false, true
	case statusQueued:
		m.queue = slices.DeleteFunc(m.queue, func(q string) bool { return q == id })
		j.status, j.completed = statusCancelled, m.now().Unix()
		j.errCode, j.errMessage = "cancelled", "job cancelled by client"
	}
	return m.view(j), false, false
}

// view is the job JSON of GET /sdcpp/v1/jobs/{id} (lock held).
func (m *jobs) view(j *job) map[string]any {
	nullable := func(t int64) any {
		if t == 0 {
			return nil
		}
		return t
	}
	v := map[string]any{
		"id": j.id, "kind": "img_gen", "status": j.status, "created": j.created,
		"started": nullable(j.started), "completed": nullable(j.completed),
		"queue_position": 0, "result": nil, "error": nil,
	}
	if j.status == statusQueued {
		v["queue_position"] = slices.Index(m.queue, j.id) + 1
	}
	switch j.status {
	case statusCompleted:
		images := make([]any, len(j.images))
		for i, b := range j.images {
			images[i] = map[string]any{"index": i, "b64_json": b}
		}
		v["result"] = map[string]any{"output_format": j.req.OutputFormat, "images": images}
	case statusFailed, statusCancelled:
		v["error"] = map[string]any{"code": j.errCode, "message": j.errMessage}
	}
	return v
}
