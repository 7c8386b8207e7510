package state_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// The two ends of a shared etcd store, as a leader and a follower hold them: each its own
// client (its own connection).
func writerAndReader(t *testing.T) (writer *state.DB, reader state.Feed) {
	// Its own prefix on every run (-count: the etcd is the package's).
	prefix := fmt.Sprintf("/test/%s/%d/", t.Name(), time.Now().UnixNano())
	w := state.NewEtcd(etcdClient(t), state.EtcdOptions{Prefix: prefix, MaxEvents: 3}).DB()
	r := state.NewEtcd(etcdClient(t), state.EtcdOptions{Prefix: prefix, MaxEvents: 3})
	return w, r
}

// Issue 19: a follower's WatchEvents with follow answered once from the store. The feed
// sends what is stored after the given id, then what the other process stores later, in
// order, each once, the trimming of the oldest events ignored.
func TestFollowerEventsFollowTheWritersStore(t *testing.T) {
	w, r := writerAndReader(t)
	for _, m := range []string{"1", "2"} {
		if err := w.AppendEvent(&orchestratorv1.Event{Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan *orchestratorv1.Event, 16)
	done := make(chan error, 1)
	go func() {
		done <- r.FollowEvents(ctx, 1, func(ev *orchestratorv1.Event) error { got <- ev; return nil })
	}()
	next := func() *orchestratorv1.Event {
		t.Helper()
		select {
		case ev := <-got:
			return ev
		case err := <-done:
			t.Fatalf("the feed ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return nil
	}
	if ev := next(); ev.Id != 2 || ev.Message != "2" {
		t.Fatalf("first: %v", ev)
	}
	// Written after the feed started (four more: the store keeps 3, trimming the oldest).
	if err := w.AppendEvents([]*orchestratorv1.Event{{Message: "3"}, {Message: "4"}}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"5", "6"} {
		if err := w.AppendEvent(&orchestratorv1.Event{Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	for want := uint64(3); want <= 6; want++ {
		if ev := next(); ev.Id != want {
			t.Fatalf("event %d: %v", want, ev)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the feed's end: %v", err)
	}
	select {
	case ev := <-got:
		t.Fatalf("an event sent twice or out of order: %v", ev)
	default:
	}
}

// Issue 19: WatchJob on a follower answered once, a queued job as if it had ended. The
// feed sends the record, then each version the writer stores, until the caller is done;
// a deleted job ends it with ErrNotFound.
func TestFollowerJobFollowsTheWritersRecord(t *testing.T) {
	w, r := writerAndReader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.FollowJob(ctx, "j1", func(*orchestratorv1.Job) (bool, error) { return true, nil }); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("an unknown job: %v", err)
	}
	queued := orchestratorv1.JobStatus_JOB_STATUS_QUEUED
	if err := w.PutJob(&orchestratorv1.Job{Id: "j1", Status: queued}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan orchestratorv1.JobStatus, 8)
	done := make(chan error, 1)
	go func() {
		done <- r.FollowJob(ctx, "j1", func(j *orchestratorv1.Job) (bool, error) {
			seen <- j.Status
			return j.Status == orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED, nil
		})
	}()
	if st := <-seen; st != queued {
		t.Fatalf("first: %s", st)
	}
	for _, st := range []orchestratorv1.JobStatus{orchestratorv1.JobStatus_JOB_STATUS_RUNNING, orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED} {
		if err := w.PutJob(&orchestratorv1.Job{Id: "j1", Status: st}); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != st {
			t.Fatalf("got %s, want %s", got, st)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the feed's end: %v", err)
	}
	// Deleted while followed.
	if err := w.PutJob(&orchestratorv1.Job{Id: "j2", Status: queued}); err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- r.FollowJob(ctx, "j2", func(j *orchestratorv1.Job) (bool, error) { seen <- j.Status; return false, nil })
	}()
	<-seen
	if err := w.DeleteJob("j2"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a deleted job: %v", err)
	}
}
