package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

func (m *Manager) entry(id string) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[id]
}

// Get returns a job; with includeImage, a finished job's PNG is read from the gallery.
func (m *Manager) Get(id string, includeImage bool) (*orchestratorv1.Job, error) {
	var j *orchestratorv1.Job
	if e := m.entry(id); e != nil {
		j = e.snapshot()
		e.mu.Lock()
		png, batch := e.png, e.batch
		e.mu.Unlock()
		if includeImage && png != nil && j.Result != nil {
			j.Result.Png = png
			for i, b := range j.Result.Batch {
				if i < len(batch) {
					b.Png = batch[i]
				}
			}
			return j, nil
		}
	} else {
		var err error
		if j, err = m.stored(id); err != nil {
			return nil, err
		}
	}
	// A job that just succeeded may still be live: its image is saved before its status changes.
	if includeImage && j.GetStatus() == orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED && j.Result != nil {
		png, err := m.gal.load(id)
		if err != nil {
			return nil, err
		}
		j.Result.Png = png
		batch, err := m.gal.loadBatch(id, len(j.Result.Batch)+1)
		if err != nil {
			return nil, err
		}
		for i, b := range j.Result.Batch {
			b.Png = batch[i]
		}
	}
	return j, nil
}

func (m *Manager) stored(id string) (*orchestratorv1.Job, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	j, err := m.db.Job(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return j, err
}

// Watch sends a job's updates until it ends. With fromStart it sends every update since
// the job was submitted (the submitter's own stream); otherwise it starts with the current
// state. A job that has already ended gets one final update.
func (m *Manager) Watch(ctx context.Context, id string, fromStart bool, send func(Update) error) error {
	e := m.entry(id)
	if e == nil {
		if feed, ok := m.db.Store.(state.Feed); ok {
			return m.watchStored(ctx, feed, id, send)
		}
		j, err := m.Get(id, true)
		if err != nil {
			return err
		}
		if !ended(j) {
			// Left unfinished before a restart: live once Run has recovered it.
			select {
			case <-m.recovered:
			case <-ctx.Done():
				return ctx.Err()
			}
			if e = m.entry(id); e == nil {
				if j, err = m.Get(id, true); err != nil {
					return err
				}
			}
		}
		if e == nil {
			return send(Update{Job: j, Final: true})
		}
	}
	next := 0
	if !fromStart {
		next = e.length()
		if next > 0 {
			// Start with the state as it is now.
			ups, done, err := e.read(ctx, next-1)
			if err != nil {
				return err
			}
			u := ups[0]
			u.Event, u.Progress, u.Queue = nil, nil, nil
			if err := send(u); err != nil || done {
				return err
			}
		}
	}
	for {
		ups, done, err := e.read(ctx, next)
		if err != nil {
			return err
		}
		for _, u := range ups {
			if err := send(u); err != nil {
				return err
			}
		}
		next += len(ups)
		if done {
			return nil
		}
	}
}

// watchStored follows a job that is not live here through the store's feed: on a follower,
// a job the leader runs (its record changes as it is queued, starts and ends). Each change
// is an update; the last, once the job has ended, is final (with its image, as Get gives it,
// when this replica's gallery has it).
func (m *Manager) watchStored(ctx context.Context, feed state.Feed, id string, send func(Update) error) error {
	if !ValidID(id) {
		return fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	err := feed.FollowJob(ctx, id, func(j *orchestratorv1.Job) (bool, error) {
		if !ended(j) {
			return false, send(Update{Job: j})
		}
		final, err := m.Get(id, true)
		if errors.Is(err, fs.ErrNotExist) {
			// The image is in the gallery of the replica that made it, not this one's:
			// the record ends the watch, without the PNG (GetJob on the leader has it).
			final, err = j, nil
		}
		if err != nil {
			return true, err
		}
		return true, send(Update{Job: final, Final: true})
	})
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return err
}

// ended reports whether a job has reached its end.
func ended(j *orchestratorv1.Job) bool {
	switch j.GetStatus() {
	case orchestratorv1.JobStatus_JOB_STATUS_QUEUED, orchestratorv1.JobStatus_JOB_STATUS_RUNNING:
		return false
	}
	return true
}

// Cancel cancels a queued or running job and returns it as it is then. Cancelling an
// ended job returns it unchanged.
func (m *Manager) Cancel(id string) (*orchestratorv1.Job, error) {
	e := m.entry(id)
	if e == nil {
		return m.Get(id, false)
	}
	e.cancel()
	if m.q.Remove(id) {
		m.finish(e, nil, false, ErrCancelled)
	}
	return e.snapshot(), nil
}

// CancelAndWait cancels a queued or running job and returns it once it has ended: CANCELLED,
// or the end it reached first (SUCCEEDED, FAILED); its record and events no longer change
// after that. A running job ends once its generation has stopped (the diffusion service
// stops the engine as its stream is cancelled); the LLM reload of an offload goes on after.
// An ended job is returned unchanged; ctx bounds the wait.
func (m *Manager) CancelAndWait(ctx context.Context, id string) (*orchestratorv1.Job, error) {
	e := m.entry(id)
	if e == nil {
		return m.Get(id, false)
	}
	if _, err := m.Cancel(id); err != nil {
		return nil, err
	}
	select {
	case <-e.settled:
	case <-ctx.Done():
		return nil, fmt.Errorf("job %s: cancelled, but not ended yet: %w", id, ctx.Err())
	}
	return e.snapshot(), nil
}

// Wait blocks until a job ends (or ctx does) and returns its last update.
func (m *Manager) Wait(ctx context.Context, id string) (Update, error) {
	var last Update
	err := m.Watch(ctx, id, true, func(u Update) error { last = u; return nil })
	return last, err
}

// List returns a page of jobs, newest first; active jobs show their live state.
func (m *Manager) List(pageSize int, pageToken string, status orchestratorv1.JobStatus) ([]*orchestratorv1.Job, string, error) {
	if pageSize <= 0 {
		pageSize = 50
	}
	pageSize = min(pageSize, 500)
	if pageToken != "" && !ValidID(pageToken) {
		return nil, "", fmt.Errorf("%w: invalid page token", ErrBadRequest)
	}
	var keep func(*orchestratorv1.Job) bool
	if status != orchestratorv1.JobStatus_JOB_STATUS_UNSPECIFIED {
		keep = func(j *orchestratorv1.Job) bool {
			if e := m.entry(j.Id); e != nil {
				return e.status() == status
			}
			return j.Status == status
		}
	}
	jobs, next, err := m.db.ListJobs(pageToken, pageSize, keep)
	if err != nil {
		return nil, "", err
	}
	for i, j := range jobs {
		if e := m.entry(j.Id); e != nil {
			jobs[i] = e.snapshot()
		}
	}
	return jobs, next, nil
}

// ErrBadRequest marks invalid list parameters.
var ErrBadRequest = errors.New("bad request")

// Delete cancels a job if it is active, then deletes its record and image.
func (m *Manager) Delete(id string) error {
	// A record that no longer decodes can still be deleted.
	if _, err := m.stored(id); err != nil && !errors.Is(err, state.ErrCorruptRecord) {
		return err
	}
	if e := m.entry(id); e != nil {
		if _, err := m.Cancel(id); err != nil {
			return err
		}
		// Wait for the end to be recorded, so the record is not written back after.
		<-e.settled
	}
	if err := m.gal.remove(id); err != nil {
		return err
	}
	if err := m.db.DeleteJob(id); err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	return nil
}

// CancelAll cancels every queued and running job (on shutdown: the running job's cycle
// still reloads the LLM before the worker returns).
func (m *Manager) CancelAll() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.live))
	for id := range m.live {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		_, _ = m.Cancel(id)
	}
}
