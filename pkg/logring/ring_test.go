package logring

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRingTailAndWrap(t *testing.T) {
	r := New[int](3)
	if got := r.Tail(5); len(got) != 0 {
		t.Fatalf("empty Tail = %v", got)
	}
	for i := 1; i <= 5; i++ {
		if seq := r.Append(i * 10); seq != uint64(i) {
			t.Fatalf("Append seq = %d, want %d", seq, i)
		}
	}
	if got, want := r.Tail(10), []int{30, 40, 50}; !slices.Equal(got, want) {
		t.Fatalf("Tail(10) = %v, want %v", got, want)
	}
	if got, want := r.Tail(2), []int{40, 50}; !slices.Equal(got, want) {
		t.Fatalf("Tail(2) = %v, want %v", got, want)
	}
	if got, want := r.TailSince(5, 10), []int{50}; !slices.Equal(got, want) {
		t.Fatalf("TailSince(5) = %v, want %v", got, want)
	}
	if got := r.TailSince(6, 10); len(got) != 0 {
		t.Fatalf("TailSince(6) = %v, want empty", got)
	}
	if r.Len() != 3 || r.NextSeq() != 6 {
		t.Fatalf("Len=%d NextSeq=%d", r.Len(), r.NextSeq())
	}
}

func TestCursorBacklogAndMissed(t *testing.T) {
	ctx := context.Background()
	r := New[string](4)
	r.Append("a")
	r.Append("b")
	c := r.Subscribe(1) // only "b"
	all := r.Subscribe(100)
	live := r.Subscribe(0)

	e, err := c.Next(ctx)
	if err != nil || e.Value != "b" || e.Seq != 2 || e.Missed != 0 {
		t.Fatalf("Next = %+v, %v", e, err)
	}
	if _, ok := live.TryNext(); ok {
		t.Fatal("live cursor yielded an old entry")
	}
	// Append 6 more: ring holds seq 5..8; cursor c is at 3 -> misses 3,4.
	for _, s := range []string{"c", "d", "e", "f", "g", "h"} {
		r.Append(s)
	}
	if got := c.Lag(); got != 4 {
		t.Fatalf("Lag = %d, want 4", got)
	}
	e, _ = c.Next(ctx)
	if e.Value != "e" || e.Missed != 2 || e.Seq != 5 {
		t.Fatalf("after overflow Next = %+v, want e with Missed 2", e)
	}
	e, _ = c.Next(ctx)
	if e.Value != "f" || e.Missed != 0 {
		t.Fatalf("Next = %+v", e)
	}
	e, _ = all.Next(ctx)
	if e.Value != "e" || e.Missed != 4 { // a..d lost (a, b were in its backlog)
		t.Fatalf("all.Next = %+v", e)
	}
	e, _ = live.Next(ctx)
	if e.Value != "e" || e.Missed != 2 {
		t.Fatalf("live.Next = %+v", e)
	}
}

func TestCursorWaitsAndCloses(t *testing.T) {
	r := New[int](8)
	c := r.Subscribe(0)
	got := make(chan Entry[int], 1)
	go func() {
		e, err := c.Next(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	r.Append(7)
	if e := <-got; e.Value != 7 {
		t.Fatalf("woken with %+v", e)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on empty with deadline: %v", err)
	}

	r.Append(8)
	r.Close()
	if seq := r.Append(9); seq != 0 {
		t.Fatalf("Append after Close returned seq %d", seq)
	}
	if e, err := c.Next(context.Background()); err != nil || e.Value != 8 {
		t.Fatalf("drain after Close: %+v %v", e, err)
	}
	if _, err := c.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after drain: %v, want ErrClosed", err)
	}
	r.Close() // idempotent
}

// TestStalledSubscriberNeverBlocksWriters runs several writers while one
// subscriber never reads and another reads slowly. The writers must finish
// (a blocking fan-out would deadlock here), and the slow reader must account
// for every entry: received + missed == written, in order.
func TestStalledSubscriberNeverBlocksWriters(t *testing.T) {
	const writers, perWriter = 4, 20000
	r := New[int](64)
	_ = r.Subscribe(0) // stalled: never reads
	slow := r.Subscribe(0)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				r.Append(w*perWriter + i)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); r.Close(); close(done) }()

	var received, missed uint64
	var lastSeq uint64
	for {
		e, err := slow.Next(context.Background())
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != lastSeq+e.Missed+1 {
			t.Fatalf("seq %d after %d with missed %d: gap not accounted", e.Seq, lastSeq, e.Missed)
		}
		lastSeq = e.Seq
		received++
		missed += e.Missed
		if received%1000 == 0 {
			time.Sleep(time.Millisecond) // be slow
		}
	}
	<-done
	if total := uint64(writers * perWriter); received+missed != total {
		t.Fatalf("received %d + missed %d != written %d", received, missed, total)
	}
	if missed == 0 {
		t.Log("slow reader missed nothing (scheduler kept up)")
	}
}

func BenchmarkAppend(b *testing.B) {
	r := New[string](1024)
	for range 8 {
		_ = r.Subscribe(0)
	}
	for b.Loop() {
		r.Append("line")
	}
}
