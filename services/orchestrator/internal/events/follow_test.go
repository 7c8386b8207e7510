package events_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// etcdLog is an event log on a real etcd under prefix, with its own client (its own
// process, as a replica would be).
func etcdLog(t *testing.T, etcd *testenv.EtcdCluster, prefix string) (*events.Log, *state.DB) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	db := state.NewEtcd(cli, state.EtcdOptions{Prefix: prefix}).DB()
	return events.New(db, slog.New(slog.DiscardHandler)), db
}

// Issue 19: a follower's WatchEvents with follow sent the stored events and then nothing,
// the leader's new events never reaching it. On a shared store the follow comes from the
// store: the follower gets its backlog, then each event the leader emits, once, in order;
// without a backlog only the new ones; closing the log ends the watch.
func TestFollowerWatchEventsFollowsTheLeadersEvents(t *testing.T) {
	etcd := testenv.StartEtcd(t, 1)
	leader, _ := etcdLog(t, etcd, "/ev/")
	follower, store := etcdLog(t, etcd, "/ev/")
	for range 3 {
		leader.Emit(queued, "", "j", "old", nil)
	}
	leader.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type watch struct {
		got  chan *orchestratorv1.Event
		done chan error
	}
	start := func(o events.WatchOptions) watch {
		w := watch{got: make(chan *orchestratorv1.Event, 64), done: make(chan error, 1)}
		go func() {
			w.done <- follower.Watch(ctx, o, func(ev *orchestratorv1.Event) error { w.got <- ev; return nil })
		}()
		return w
	}
	withBacklog := start(events.WatchOptions{Backlog: 2, Follow: true})
	recv := func(w watch) *orchestratorv1.Event {
		t.Helper()
		select {
		case ev := <-w.got:
			return ev
		case err := <-w.done:
			t.Fatalf("the watch ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no event reached the follower")
		}
		return nil
	}
	for _, want := range []uint64{2, 3} {
		if ev := recv(withBacklog); ev.Id != want {
			t.Fatalf("backlog: %v, want id %d", ev, want)
		}
	}
	// The follower has sent its backlog; the leader emits.
	for range 5 {
		leader.Emit(started, "", "j", "new", nil)
	}
	for want := uint64(4); want <= 8; want++ {
		if ev := recv(withBacklog); ev.Id != want || ev.Type != started {
			t.Fatalf("followed: %v, want id %d", ev, want)
		}
	}
	// Without a backlog, a watch sends what is stored after the newest event it found:
	// the leader emits until one reaches it, never one of those before it started.
	onlyNew := start(events.WatchOptions{Follow: true, Types: []orchestratorv1.EventType{started}})
	ectx, stopEmitting := context.WithCancel(ctx)
	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		for ectx.Err() == nil {
			leader.Emit(queued, "", "j", "filtered out", nil)
			leader.Emit(started, "", "j", "new", nil)
			leader.Flush()
		}
	}()
	first := recv(onlyNew)
	stopEmitting()
	<-emitted
	if first.Id <= 8 || first.Type != started {
		t.Fatalf("a watch without a backlog got %v first", first)
	}
	last, err := store.LastEvents(1)
	if err != nil || len(last) != 1 {
		t.Fatalf("the newest stored event: %v %v", last, err)
	}
	newest := last[0].Id
	for want := first.Id + 2; want <= newest; want += 2 {
		if ev := recv(onlyNew); ev.Id != want {
			t.Fatalf("without a backlog: %v, want id %d", ev, want)
		}
	}
	for want := uint64(9); want <= newest; want++ {
		if ev := recv(withBacklog); ev.Id != want {
			t.Fatalf("followed: %v, want id %d", ev, want)
		}
	}
	follower.Close()
	for _, w := range []watch{withBacklog, onlyNew} {
		if err := <-w.done; !errors.Is(err, events.ErrClosed) {
			t.Fatalf("the watch's end on close: %v", err)
		}
		select {
		case ev := <-w.got:
			t.Fatalf("an event sent twice: %v", ev)
		default:
		}
	}
}
