package events_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

func newLog(t *testing.T) *events.Log {
	db, err := state.Open(filepath.Join(t.TempDir(), "o.db"), state.Options{MaxEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return events.New(db, slog.New(slog.DiscardHandler))
}

const (
	queued  = orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED
	started = orchestratorv1.EventType_EVENT_TYPE_JOB_STARTED
)

func TestBacklogThenFollowWithoutGapsOrDuplicates(t *testing.T) {
	l := newLog(t)
	for i := 0; i < 5; i++ {
		l.Emit(queued, "", "j", "old", nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []uint64
	done := make(chan error, 1)
	go func() {
		done <- l.Watch(ctx, events.WatchOptions{Backlog: 3, Follow: true}, func(ev *orchestratorv1.Event) error {
			mu.Lock()
			got = append(got, ev.Id)
			mu.Unlock()
			return nil
		})
	}()
	// Emit concurrently with the subscription.
	for i := 0; i < 20; i++ {
		l.Emit(started, "", "j", "new", map[string]float64{"i": float64(i)})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 23 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	// Ids 3..25 once each and in order (the backlog of 3 may be taken after some new ones
	// were stored; then it starts later and nothing is sent twice).
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("ids not contiguous: %v", got)
		}
	}
	if got[len(got)-1] != 25 {
		t.Fatalf("last id %d, ids %v", got[len(got)-1], got)
	}
}

func TestSinceIDAndTypeFilter(t *testing.T) {
	l := newLog(t)
	for i := 0; i < 6; i++ {
		typ := queued
		if i%2 == 1 {
			typ = started
		}
		l.Emit(typ, "", "j", "", nil)
	}
	var got []uint64
	err := l.Watch(context.Background(), events.WatchOptions{SinceID: 2, Types: []orchestratorv1.EventType{started}}, func(ev *orchestratorv1.Event) error {
		got = append(got, ev.Id)
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != 4 || got[1] != 6 {
		t.Fatalf("got %v %v", got, err)
	}
	got = nil
	_ = l.Watch(context.Background(), events.WatchOptions{}, func(ev *orchestratorv1.Event) error { got = append(got, ev.Id); return nil })
	if len(got) != 0 {
		t.Fatalf("backlog 0 sent %v", got)
	}
}

func TestSlowSubscriberIsDroppedNotBlocking(t *testing.T) {
	l := newLog(t)
	block := make(chan struct{})
	first := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- l.Watch(context.Background(), events.WatchOptions{Follow: true}, func(*orchestratorv1.Event) error {
			once.Do(func() { close(first) })
			<-block
			return nil
		})
	}()
	// The watcher is subscribed once it holds an event (events emitted before are stored,
	// not sent: it asked for no backlog).
	for subscribed := false; !subscribed; {
		l.Emit(queued, "", "", "", nil)
		select {
		case <-first:
			subscribed = true
		case <-time.After(5 * time.Millisecond):
		}
	}
	start := time.Now()
	for i := 0; i < subscriberBufferPlus; i++ {
		l.Emit(queued, "", "", "", nil)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("emitting blocked on a stalled subscriber: %v", d)
	}
	// Delivered (and the watcher dropped) once stored: wait for that before unblocking it.
	l.Flush()
	close(block)
	if err := <-done; !errors.Is(err, events.ErrSlowSubscriber) {
		t.Fatalf("stalled watch ended with %v", err)
	}
}

// subscriberBufferPlus overflows the subscriber buffer (256) by a few events.
const subscriberBufferPlus = 270

func TestCloseEndsFollowers(t *testing.T) {
	l := newLog(t)
	done := make(chan error, 1)
	go func() {
		done <- l.Watch(context.Background(), events.WatchOptions{Follow: true}, func(*orchestratorv1.Event) error { return nil })
	}()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrClosed) {
			t.Fatalf("watch ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the watch")
	}
}
