package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/genailab/genailab/services/orchestrator/internal/queue"
)

func TestFIFOPositionsAndFull(t *testing.T) {
	var mu sync.Mutex
	var snaps [][]string
	q := queue.New(3, func(ids []string) { mu.Lock(); snaps = append(snaps, ids); mu.Unlock() })
	for i, id := range []string{"a", "b", "c"} {
		pos, err := q.Push(id)
		if err != nil || pos != i+1 {
			t.Fatalf("push %s: pos %d err %v", id, pos, err)
		}
	}
	if _, err := q.Push("d"); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("push into a full queue: %v", err)
	}
	if q.Position("c") != 3 || q.Position("zz") != 0 {
		t.Fatal("positions wrong")
	}
	if !q.Remove("b") || q.Remove("b") {
		t.Fatal("remove")
	}
	if q.Position("c") != 2 {
		t.Fatalf("c moved to %d", q.Position("c"))
	}
	ctx := context.Background()
	for _, want := range []string{"a", "c"} {
		got, err := q.Pop(ctx)
		if err != nil || got != want {
			t.Fatalf("pop %q %v, want %q", got, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(snaps) != "[[a] [a b] [a b c] [a c] [c] []]" {
		t.Fatalf("change snapshots: %v", snaps)
	}
}

func TestPopWaitsAndHonoursContext(t *testing.T) {
	q := queue.New(2, nil)
	got := make(chan string)
	go func() {
		id, _ := q.Pop(context.Background())
		got <- id
	}()
	time.Sleep(10 * time.Millisecond)
	if _, err := q.Push("x"); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != "x" {
		t.Fatalf("popped %q", id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Pop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("pop on a cancelled context: %v", err)
	}
}

func TestConcurrentPushNoneLostOrderKept(t *testing.T) {
	q := queue.New(8, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := q.Push(fmt.Sprint(i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, queue.ErrFull):
				refused++
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if accepted != 8 || refused != 12 || q.Len() != 8 {
		t.Fatalf("accepted %d refused %d len %d", accepted, refused, q.Len())
	}
}

// Issue 19: the jobs restored on a restart or a failover go ahead of those submitted since,
// in their order, even past the capacity; new ones wait for room.
func TestPushFrontRestoresAheadOfNewOnesPastTheCapacity(t *testing.T) {
	var mu sync.Mutex
	var snaps [][]string
	q := queue.New(2, func(ids []string) { mu.Lock(); snaps = append(snaps, ids); mu.Unlock() })
	if _, err := q.Push("new"); err != nil {
		t.Fatal(err)
	}
	q.PushFront("old1", "old2")
	q.PushFront()
	if q.Len() != 3 || q.Position("old1") != 1 || q.Position("old2") != 2 || q.Position("new") != 3 {
		t.Fatalf("positions: old1 %d old2 %d new %d", q.Position("old1"), q.Position("old2"), q.Position("new"))
	}
	if _, err := q.Push("later"); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("push past the capacity: %v", err)
	}
	for _, want := range []string{"old1", "old2", "new"} {
		got, err := q.Pop(context.Background())
		if err != nil || got != want {
			t.Fatalf("pop %q %v, want %q", got, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(snaps) != "[[new] [old1 old2 new] [old2 new] [new] []]" {
		t.Fatalf("change snapshots: %v", snaps)
	}
}
