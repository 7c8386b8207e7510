package sampler_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genailab/genailab/services/monitor/internal/sampler"
	"github.com/genailab/genailab/services/monitor/internal/sampler/samplertest"
)

// receiver is a send function's far end: it records what it is sent and
// checks that sends never overlap, come in order and never repeat.
type receiver struct {
	t       *testing.T
	mu      sync.Mutex
	got     []sampler.Update[int]
	busy    atomic.Bool
	lastSeq atomic.Uint64
	// gate, when set, is waited on by the send of value block.
	gate  chan struct{}
	block uint64
	// blocked is closed once the send of value block is waiting on gate.
	blocked chan struct{}
	release sync.Once
}

// stallAt makes the send of value seq wait until open is called, which the
// test's cleanup does too (so a failing test still lets the hub close).
func (r *receiver) stallAt(t *testing.T, seq uint64) {
	r.gate, r.block = make(chan struct{}), seq
	t.Cleanup(r.open)
}

func (r *receiver) open() { r.release.Do(func() { close(r.gate) }) }

func newReceiver(t *testing.T) *receiver { return &receiver{t: t, blocked: make(chan struct{})} }

func (r *receiver) send(u sampler.Update[int]) error {
	if !r.busy.CompareAndSwap(false, true) {
		r.t.Errorf("two sends at once (seq %d)", u.Seq)
	}
	defer r.busy.Store(false)
	if prev := r.lastSeq.Load(); u.Seq <= prev {
		r.t.Errorf("seq %d sent after %d", u.Seq, prev)
	}
	if r.gate != nil && u.Seq == r.block {
		close(r.blocked)
		<-r.gate
	}
	r.mu.Lock()
	r.got = append(r.got, u)
	r.mu.Unlock()
	r.lastSeq.Store(u.Seq)
	return nil
}

func (r *receiver) updates() []sampler.Update[int] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sampler.Update[int](nil), r.got...)
}

// testHub is a hub of counter values on a manual clock, closed when the test ends (after
// its other cleanups, which release stalled sends).
func testHub(t *testing.T) (*sampler.Hub[int], *samplertest.Clock) {
	clock := samplertest.NewClock()
	var c counter
	hub := sampler.NewHub(c.newCollect, clock.NewTicker)
	t.Cleanup(hub.Close)
	return hub, clock
}

// allAt reports whether every receiver has been sent value seq.
func allAt(rs []*receiver, seq uint64) func() bool {
	return func() bool {
		for _, r := range rs {
			if r.lastSeq.Load() < seq {
				return false
			}
		}
		return true
	}
}

// serve subscribes r with SubscribeSend and runs Serve until the test ends
// or cancel is called; its error is on the returned channel.
func serve(t *testing.T, hub *sampler.Hub[int], r *receiver) (*sampler.Subscription[int], <-chan error) {
	t.Helper()
	sub, err := hub.SubscribeSend(iv, r.send)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sub.Serve(ctx) }()
	t.Cleanup(func() { cancel(); sub.Cancel() })
	if r.gate != nil {
		t.Cleanup(r.open) // before Cancel, which waits for the stalled send
	}
	return sub, errc
}

func TestSendSubscriptionsGetEveryValueInOrder(t *testing.T) {
	hub, clock := testHub(t)
	rs := make([]*receiver, 10)
	for i := range rs {
		rs[i] = newReceiver(t)
		serve(t, hub, rs[i])
	}
	all := func(seq uint64) func() bool { return allAt(rs, seq) }
	waitFor(t, "the first value", all(1))
	for k := uint64(2); k <= 50; k++ {
		clock.Tick(iv)
		waitFor(t, "the tick's value at every receiver", all(k))
	}
	for i, r := range rs {
		got := r.updates()
		if len(got) != 50 {
			t.Fatalf("receiver %d got %d values, want 50", i, len(got))
		}
		for j, u := range got {
			if u.Seq != uint64(j+1) || u.Value != j+1 || u.Missed != 0 {
				t.Fatalf("receiver %d, value %d: %+v", i, j, u)
			}
		}
	}
	if st := hub.Stats(); st.Subscribers != 10 || st.Missed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStalledSendIsMovedOffThePass: one receiver's send blocks (a gRPC
// stream whose client does not read). The others still get every value
// while it is blocked; once released it gets the newest value and is told
// how many it skipped, and the hub counted the same.
func TestStalledSendIsMovedOffThePass(t *testing.T) {
	hub, clock := testHub(t)
	stalled := newReceiver(t)
	stalled.stallAt(t, 2)
	serve(t, hub, stalled)
	healthy := make([]*receiver, 20)
	for i := range healthy {
		healthy[i] = newReceiver(t)
		serve(t, hub, healthy[i])
	}
	all := func(seq uint64) func() bool { return allAt(healthy, seq) }
	waitFor(t, "the first value", all(1))
	const last = 30
	for k := uint64(2); k <= last; k++ {
		clock.Tick(iv)
		waitFor(t, "the tick's value at every healthy receiver", all(k))
	}
	<-stalled.blocked
	for _, r := range healthy {
		if n := len(r.updates()); n != last {
			t.Fatalf("a healthy receiver got %d values, want %d", n, last)
		}
	}
	stalled.open() // the client reads again
	waitFor(t, "the newest value at the stalled receiver", func() bool { return stalled.lastSeq.Load() == last })
	got := stalled.updates()
	var skipped uint64
	for _, u := range got {
		skipped += u.Missed
	}
	// 1 and 2 (the blocked send), then the newest with everything between
	// counted, possibly one more on the way (taken before the release).
	if len(got) < 3 || got[0].Seq != 1 || got[1].Seq != 2 || uint64(len(got))+skipped != last {
		t.Fatalf("stalled receiver got %+v", got)
	}
	if st := hub.Stats(); st.Missed != skipped {
		t.Fatalf("hub counted %d missed, the receiver was told %d", st.Missed, skipped)
	}
}

// TestCancelWaitsForTheSendInFlight: no send is made once Cancel has
// returned — a gRPC handler returns right after, and a stream must not be
// sent to after its handler returned.
func TestCancelWaitsForTheSendInFlight(t *testing.T) {
	hub, clock := testHub(t)
	r := newReceiver(t)
	r.stallAt(t, 2)
	sub, _ := serve(t, hub, r)
	other := newReceiver(t)
	serve(t, hub, other) // keeps the sampler running
	waitFor(t, "the first value", func() bool { return r.lastSeq.Load() == 1 })
	clock.Tick(iv)
	<-r.blocked
	cancelled := make(chan struct{})
	go func() { sub.Cancel(); close(cancelled) }()
	select {
	case <-cancelled:
		t.Fatal("Cancel returned while a send was in flight")
	case <-waitUntil(func() bool { return other.lastSeq.Load() == 2 }):
	}
	r.open()
	<-cancelled
	n := len(r.updates())
	for k := uint64(3); k <= 5; k++ {
		clock.Tick(iv)
		waitFor(t, "the other receiver's value", func() bool { return other.lastSeq.Load() == k })
	}
	if got := len(r.updates()); got != n || n != 2 {
		t.Fatalf("cancelled receiver: %d values at Cancel, %d after", n, got)
	}
}

// waitUntil is closed once cond holds (polled).
func waitUntil(cond func() bool) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for !cond() {
			time.Sleep(time.Millisecond)
		}
		close(ch)
	}()
	return ch
}

func TestServeAndNextAreNotMixed(t *testing.T) {
	hub, _ := testHub(t)
	read, err := hub.Subscribe(iv)
	if err != nil {
		t.Fatal(err)
	}
	defer read.Cancel()
	if err := read.Serve(context.Background()); !errors.Is(err, sampler.ErrNotSender) {
		t.Fatalf("Serve on a Next subscription: %v", err)
	}
	sent, err := hub.SubscribeSend(iv, func(sampler.Update[int]) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer sent.Cancel()
	if _, err := sent.Next(context.Background()); !errors.Is(err, sampler.ErrNotReader) {
		t.Fatalf("Next on a send subscription: %v", err)
	}
	if _, err := hub.SubscribeSend(iv, nil); err == nil {
		t.Fatal("a nil send function was accepted")
	}
	// Closing the hub ends Serve.
	errc := make(chan error, 1)
	go func() { errc <- sent.Serve(context.Background()) }()
	hub.Close()
	if err := <-errc; !errors.Is(err, sampler.ErrClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

// TestFailedSendEndsServe: a send that returns an error, or panics, ends its Serve with it;
// that subscription is sent nothing more, and the sampler goes on for the others.
func TestFailedSendEndsServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func() error
		want string
	}{
		{"error", func() error { return errors.New("stream reset") }, "stream reset"},
		{"panic", func() error { panic("broken stream") }, "broken stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub, clock := testHub(t)
			var calls atomic.Int32
			sub, err := hub.SubscribeSend(iv, func(u sampler.Update[int]) error {
				calls.Add(1)
				if u.Seq == 2 {
					return tc.fail()
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Cancel()
			errc := make(chan error, 1)
			go func() { errc <- sub.Serve(context.Background()) }()
			other := newReceiver(t)
			serve(t, hub, other)
			waitFor(t, "the first values", func() bool { return calls.Load() == 1 && other.lastSeq.Load() == 1 })
			clock.Tick(iv)
			if err := <-errc; err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve returned %v, want %q", err, tc.want)
			}
			for k := uint64(2); k <= 3; k++ {
				waitFor(t, "the sampler still sending", func() bool { return other.lastSeq.Load() == k })
				clock.Tick(iv)
			}
			waitFor(t, "the last value", func() bool { return other.lastSeq.Load() == 4 })
			if n := calls.Load(); n != 2 {
				t.Fatalf("%d sends, want none after the failed one", n)
			}
		})
	}
}
