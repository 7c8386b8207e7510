// Package events is the orchestrator's event log: every event is stored in the database
// (which keeps the last few thousand) and handed to live subscribers. Watch sends the
// stored backlog first, then follows, without gaps or duplicates between the two. Events
// are written behind their emitters, in batches (commit.go); Flush waits for them.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"google.golang.org/protobuf/types/known/timestamppb"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// MaxBacklog bounds the stored events one Watch sends.
const MaxBacklog = 5000

// subscriberBuffer is how many events a subscriber may lag behind before it is dropped.
const subscriberBuffer = 256

// ErrSlowSubscriber ends a Watch whose reader fell too far behind; it can resume from the
// last id it saw.
var ErrSlowSubscriber = errors.New("event subscriber fell behind; watch again with since_id set to the last event id received")

// Log stores and distributes events.
type Log struct {
	db  *state.DB
	log *slog.Logger

	mu   sync.Mutex
	subs map[*subscriber]struct{}
	// observers see every event, in order, under mu (the metrics).
	observers []func(*orchestratorv1.Event)
	// closed ends every Watch (on shutdown).
	closed    chan struct{}
	closeOnce sync.Once

	// The write-behind (commit.go): next is the next id (0: not read from the store yet),
	// durable the last id written, pending what waits for the committer, committing
	// whether it runs; stored is closed (and replaced) after each batch.
	next, durable uint64
	pending       []pendingEvent
	committing    bool
	stored        chan struct{}
}

// ErrClosed ends the watches of a log that is shutting down.
var ErrClosed = errors.New("the orchestrator is shutting down")

// Close ends every Watch with ErrClosed; events are still stored.
func (l *Log) Close() { l.closeOnce.Do(func() { close(l.closed) }) }

type subscriber struct {
	ch      chan *orchestratorv1.Event
	dropped chan struct{}
}

// New returns a log writing to db.
func New(db *state.DB, log *slog.Logger) *Log {
	return &Log{db: db, log: log, subs: map[*subscriber]struct{}{}, closed: make(chan struct{}), stored: make(chan struct{})}
}

// Observe has fn called with every event appended from now on, in order, with the log's
// lock held: fn must be quick and must not call the log.
func (l *Log) Observe(fn func(*orchestratorv1.Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observers = append(l.observers, fn)
}

// Emit records an event of type typ with a message and its numbers, and returns it (with
// its id and time set).
func (l *Log) Emit(typ orchestratorv1.EventType, host, jobID, message string, values map[string]float64) *orchestratorv1.Event {
	ev := newEvent(typ, host, jobID, message, values)
	l.Append(ev)
	return ev
}

// newEvent is the event Emit and EmitWithJob record, timed now.
func newEvent(typ orchestratorv1.EventType, host, jobID, message string, values map[string]float64) *orchestratorv1.Event {
	return &orchestratorv1.Event{Type: typ, Host: host, JobId: jobID, Message: message, Values: values, Time: timestamppb.Now()}
}

// Append numbers ev (and sets its time when unset), hands it to the observers, and queues
// it for the store; watchers get it once it is stored. A failing database write is logged;
// the event is still delivered live.
func (l *Log) Append(ev *orchestratorv1.Event) {
	if ev.Time == nil {
		ev.Time = timestamppb.Now()
	}
	l.add(pending(ev))
}

// EmitWithJob records an event as Emit does, and stores the job record rec in the same
// transaction as the event, then waits until both are stored (with every event appended
// before, as Flush does): a job's end is durable, and seen by the store's readers, at once
// with its last event, for one commit instead of two. The error is the write's (the
// committer logs it too); the event is delivered live either way.
func (l *Log) EmitWithJob(typ orchestratorv1.EventType, host, jobID, message string, values map[string]float64, rec *orchestratorv1.Job) (*orchestratorv1.Event, error) {
	ev := newEvent(typ, host, jobID, message, values)
	written := make(chan error, 1)
	p := pending(ev)
	p.job, p.written = rec, written
	l.add(p)
	return ev, <-written
}

// add numbers p's event, queues it for the store and hands it to the observers, under
// the log's lock.
func (l *Log) add(p pendingEvent) {
	ev := p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	ev.Id = l.nextIDLocked()
	p.stored.Id = ev.Id
	l.enqueueLocked(p)
	l.log.Info("event", "id", ev.Id, "type", ev.Type.String(), "job", ev.JobId, "message", ev.Message)
	for _, fn := range l.observers {
		fn(ev)
	}
}

// deliverLocked hands a stored event to the watchers, dropping those that lag too far.
func (l *Log) deliverLocked(ev *orchestratorv1.Event) {
	for s := range l.subs {
		select {
		case s.ch <- ev:
		default:
			delete(l.subs, s)
			close(s.dropped)
		}
	}
}

// WatchOptions select events.
type WatchOptions struct {
	// SinceID sends stored events with a larger id first; 0 sends the last Backlog ones.
	SinceID uint64
	// Backlog is how many stored events to send when SinceID is 0 (bounded by MaxBacklog).
	Backlog int
	// Types keeps only these types; empty keeps all.
	Types []orchestratorv1.EventType
	// Follow keeps watching after the stored events.
	Follow bool
}

// Watch sends the selected stored events, then (with Follow) new ones, until ctx ends,
// send fails, or the subscriber falls behind (ErrSlowSubscriber).
func (l *Log) Watch(ctx context.Context, o WatchOptions, send func(*orchestratorv1.Event) error) error {
	keep := func(ev *orchestratorv1.Event) bool { return len(o.Types) == 0 || slices.Contains(o.Types, ev.Type) }
	// On a store that other processes write (etcd: the replicas share it), what follows
	// the backlog comes from the store's feed, so that a follower sees the leader's events
	// (and a leader its own, once stored, as its live subscribers would).
	feed, _ := l.db.Store.(state.Feed)
	var sub *subscriber
	if o.Follow && feed == nil {
		// Subscribe before reading the backlog, so nothing falls between the two.
		sub = &subscriber{ch: make(chan *orchestratorv1.Event, subscriberBuffer), dropped: make(chan struct{})}
		l.mu.Lock()
		l.subs[sub] = struct{}{}
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			delete(l.subs, sub)
			l.mu.Unlock()
		}()
	}
	// What was appended before the call is read back from the store.
	l.Flush()
	var backlog []*orchestratorv1.Event
	var err error
	switch {
	case o.SinceID > 0:
		backlog, err = l.db.EventsAfter(o.SinceID, MaxBacklog)
	case o.Backlog > 0:
		backlog, err = l.db.LastEvents(min(o.Backlog, MaxBacklog))
	}
	if err != nil {
		return fmt.Errorf("read stored events: %w", err)
	}
	last := o.SinceID
	for _, ev := range backlog {
		last = max(last, ev.Id)
		if keep(ev) {
			if err := send(ev); err != nil {
				return err
			}
		}
	}
	if !o.Follow {
		return nil
	}
	if feed != nil {
		return l.follow(ctx, feed, o, last, keep, send)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.dropped:
			return ErrSlowSubscriber
		case <-l.closed:
			return ErrClosed
		case ev := <-sub.ch:
			if ev.Id != 0 && ev.Id <= last {
				continue // already sent from the backlog
			}
			if keep(ev) {
				if err := send(ev); err != nil {
					return err
				}
			}
		}
	}
}

// follow sends, from the store's feed, the events stored after the id last (after the
// newest one stored when no backlog was asked for) until ctx ends, send fails or the log
// closes.
func (l *Log) follow(ctx context.Context, feed state.Feed, o WatchOptions, last uint64, keep func(*orchestratorv1.Event) bool, send func(*orchestratorv1.Event) error) error {
	if last == 0 && o.Backlog <= 0 {
		newest, err := l.db.LastEvents(1)
		if err != nil {
			return fmt.Errorf("read stored events: %w", err)
		}
		if len(newest) == 1 {
			last = newest[0].Id
		}
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.closed:
			cancel()
		case <-fctx.Done():
		}
	}()
	err := feed.FollowEvents(fctx, last, func(ev *orchestratorv1.Event) error {
		if !keep(ev) {
			return nil
		}
		return send(ev)
	})
	select {
	case <-l.closed:
		return ErrClosed
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
