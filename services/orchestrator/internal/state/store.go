package state

import (
	"context"
	"errors"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// Store is everything the orchestrator persists, whichever backend holds it. Every write
// is atomic (one transaction) and durable when it returns; listings skip (and count) a
// record that does not decode instead of failing.
type Store interface {
	// PutSavedState stores (replacing) the saved LLM state of s.Host; it returns only once
	// the state is durable: the orchestrator calls it before stopping the LLM.
	PutSavedState(s *orchestratorv1.SavedState) error
	// SavedState returns the saved state of host, or nil when there is none.
	SavedState(host string) (*orchestratorv1.SavedState, error)
	// SavedStates returns every saved state (host "" means all), sorted by host.
	SavedStates(host string) ([]*orchestratorv1.SavedState, error)
	// ClearSavedState removes the saved state of host ("" removes all): how many.
	ClearSavedState(host string) (int, error)
	// MoveSavedState gives the saved state of from to to, unless to has one already.
	MoveSavedState(from, to string) (bool, error)

	// PutJob stores (replacing) a job record, never its PNG bytes.
	PutJob(j *orchestratorv1.Job) error
	// Job returns a stored job, or ErrNotFound.
	Job(id string) (*orchestratorv1.Job, error)
	// DeleteJob removes a job record; removing a missing one is ErrNotFound.
	DeleteJob(id string) error
	// ListJobs returns up to limit jobs, newest first, after the job `before`, keeping
	// those keep accepts; next is the `before` of the following page ("" at the end).
	ListJobs(before string, limit int, keep func(*orchestratorv1.Job) bool) (jobs []*orchestratorv1.Job, next string, err error)
	// AllJobs calls fn for every stored job, oldest first.
	AllJobs(fn func(*orchestratorv1.Job) error) error

	// AppendEvent stores ev with the next id (set on ev), keeping the newest MaxEvents.
	AppendEvent(ev *orchestratorv1.Event) error
	// AppendEvents stores several events in one transaction, each with the next id.
	AppendEvents(evs []*orchestratorv1.Event) error
	// AppendEventsWithJobs stores evs as AppendEvents does and the job records jobs as
	// PutJob does, all in one transaction: a job's end and its event are durable (and
	// seen by the store's readers) together, for the price of one commit.
	AppendEventsWithJobs(evs []*orchestratorv1.Event, jobs []*orchestratorv1.Job) error
	// EventsAfter returns up to limit events with an id above sinceID, oldest first.
	EventsAfter(sinceID uint64, limit int) ([]*orchestratorv1.Event, error)
	// LastEvents returns the last n events, oldest first.
	LastEvents(n int) ([]*orchestratorv1.Event, error)

	// Correction returns the stored correction of a model (zero when none).
	Correction(model string) (Correction, error)
	// UpdateCorrection applies fn to the stored correction of model, atomically.
	UpdateCorrection(model string, fn func(Correction) Correction) error

	// Recovered is what opening did about a damaged store, nil when it was sound.
	Recovered() *Recovery
	// Faults counts the accesses that met a damaged store.
	Faults() int64
	// BadRecords counts the distinct records that did not decode.
	BadRecords() int
	// HealthDetail describes what is wrong with the store, "" when nothing is.
	HealthDetail() string
	// Close releases the store.
	Close() error
}

// Feed is a store that other processes write while this one reads it (etcd, which the
// replicas share): a follower follows the leader's writes through it instead of answering
// once from what is stored. The bbolt store has one writer, its own process, and no feed.
type Feed interface {
	// FollowEvents calls fn with every event whose id is above after, those stored now
	// and those stored later, in id order, each once, until ctx ends (its error) or fn
	// fails (that error).
	FollowEvents(ctx context.Context, after uint64, fn func(*orchestratorv1.Event) error) error
	// FollowJob calls fn with the job's record, then with each version written after it,
	// until fn returns done, ctx ends or fn fails; ErrNotFound when the job is not stored
	// or is deleted meanwhile.
	FollowJob(ctx context.Context, id string, fn func(*orchestratorv1.Job) (done bool, err error)) error
}

// DB is the orchestrator's store, as every package holds it: one of the backends behind
// the Store interface (Open: bbolt; NewEtcd: etcd). It is safe for concurrent use.
type DB struct{ Store }

// ErrNotLeader is wrapped by the error of a write to a fenced store (etcd with leader
// election) by an orchestrator that does not lead, or no longer does: its write was not
// applied. The server edge answers it with Unavailable naming the leader.
var ErrNotLeader = errors.New("this orchestrator is not the leader")
