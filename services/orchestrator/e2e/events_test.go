package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// eventLog follows the orchestrator's WatchEvents stream.
type eventLog struct {
	mu     sync.Mutex
	events []*orchestratorv1.Event
	change chan struct{}
}

func watchEvents(t testing.TB, c orchestratorv1.OrchestratorServiceClient) *eventLog {
	l := &eventLog{change: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := c.WatchEvents(ctx, &orchestratorv1.WatchEventsRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.events = append(l.events, msg.Event)
			close(l.change)
			l.change = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

// wait returns the first event of type typ (for job, when not empty), waiting up to d.
func (l *eventLog) wait(t testing.TB, typ orchestratorv1.EventType, job string, d time.Duration) *orchestratorv1.Event {
	t.Helper()
	deadline := time.After(d)
	for {
		l.mu.Lock()
		for _, e := range l.events {
			if e.Type == typ && (job == "" || e.JobId == job) {
				l.mu.Unlock()
				return e
			}
		}
		ch := l.change
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s event for job %q within %s; events: %v", typ, job, d, l.types(job))
			return nil
		}
	}
}

// has reports whether an event of type typ (for job) was seen.
func (l *eventLog) has(typ orchestratorv1.EventType, job string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Type == typ && (job == "" || e.JobId == job) {
			return true
		}
	}
	return false
}

// all returns the events of job (every event when job is empty), in order.
func (l *eventLog) all(job string) []*orchestratorv1.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*orchestratorv1.Event
	for _, e := range l.events {
		if job == "" || e.JobId == job {
			out = append(out, e)
		}
	}
	return out
}

// types lists the types of the events of job, in order.
func (l *eventLog) types(job string) []orchestratorv1.EventType {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []orchestratorv1.EventType
	for _, e := range l.events {
		if job == "" || e.JobId == job {
			out = append(out, e.Type)
		}
	}
	return out
}
