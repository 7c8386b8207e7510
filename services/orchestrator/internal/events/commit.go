package events

import (
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// The write-behind of the log. Append numbers an event and hands it to the job that emitted
// it and to the observers at once; one committer goroutine (started on demand, gone when
// nothing is pending) stores the pending events in one transaction per batch, off the
// emitter's path, and only then hands them to the watchers: a watcher never sees an event
// that a crash could lose. Flush waits until everything appended before it is stored;
// EmitWithJob does too, and has a job record written in its event's transaction: the job
// manager ends a job with it, so that a finished job's events are as durable as its image
// and record before it reports the job done, for one commit.

// nextIDLocked returns the next event id, reading the last stored one the first time.
func (l *Log) nextIDLocked() uint64 {
	if l.next == 0 {
		l.next = 1
		last, err := l.db.LastEvents(1)
		if err != nil {
			l.log.Warn("read the last event id; numbering from 1", "error", err)
		} else if len(last) == 1 {
			l.next = last[0].Id + 1
		}
		l.durable = l.next - 1
	}
	id := l.next
	l.next++
	return id
}

// enqueueLocked queues p (p.stored is a copy of p.live: the store sets the id on what it
// writes) for the committer, starting it when none runs.
func (l *Log) enqueueLocked(p pendingEvent) {
	l.pending = append(l.pending, p)
	if !l.committing {
		l.committing = true
		go l.commit()
	}
}

type pendingEvent struct {
	// live is the event as emitted (shared with the job and its watchers: never written).
	live *orchestratorv1.Event
	// stored is the copy the store writes.
	stored *orchestratorv1.Event
	// job, when set, is a job record written in the event's transaction (EmitWithJob),
	// and written answers that write.
	job     *orchestratorv1.Job
	written chan<- error
}

func pending(ev *orchestratorv1.Event) pendingEvent {
	return pendingEvent{live: ev, stored: proto.Clone(ev).(*orchestratorv1.Event)}
}

// commit stores the pending events, a batch per transaction, until none is left.
func (l *Log) commit() {
	for {
		l.mu.Lock()
		batch := l.pending
		l.pending = nil
		if len(batch) == 0 {
			l.committing = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		stored := make([]*orchestratorv1.Event, len(batch))
		var jobs []*orchestratorv1.Job
		at := map[string]int{}
		for i, p := range batch {
			stored[i] = p.stored
			if p.job == nil {
				continue
			}
			// One record per job in a transaction (etcd refuses a key twice): the last.
			if k, ok := at[p.job.GetId()]; ok {
				jobs[k] = p.job
				continue
			}
			at[p.job.GetId()] = len(jobs)
			jobs = append(jobs, p.job)
		}
		var err error
		if jobs == nil {
			err = l.db.AppendEvents(stored)
		} else {
			err = l.db.AppendEventsWithJobs(stored, jobs)
		}
		if err != nil {
			l.log.Warn("events not stored", "events", len(batch), "first_id", batch[0].live.Id, "error", err)
		} else if got, want := stored[0].Id, batch[0].live.Id; got != want {
			// The store numbers events itself; it and the log agree unless another writer
			// or a failed write came between them.
			l.log.Warn("the store numbered events differently from the live ones", "stored_id", got, "live_id", want)
		}
		l.mu.Lock()
		for _, p := range batch {
			l.deliverLocked(p.live)
		}
		l.durable = batch[len(batch)-1].live.Id
		close(l.stored)
		l.stored = make(chan struct{})
		l.mu.Unlock()
		// Answered once the batch is delivered, as Flush returns.
		for _, p := range batch {
			if p.written != nil {
				p.written <- err
			}
		}
	}
}

// Flush waits until every event appended before it is stored (or its write has failed,
// which is logged).
func (l *Log) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	target := l.next - 1
	for l.next != 0 && l.durable < target {
		ch := l.stored
		l.mu.Unlock()
		<-ch
		l.mu.Lock()
	}
}
