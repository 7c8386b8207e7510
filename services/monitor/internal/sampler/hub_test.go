package sampler_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genailab/genailab/services/monitor/internal/sampler"
	"github.com/genailab/genailab/services/monitor/internal/sampler/samplertest"
)

// counter is a collect factory whose values count its calls; calls and
// samplers count across all samplers it made.
type counter struct {
	samplers atomic.Int32
	calls    atomic.Int32
}

func (c *counter) newCollect() func(context.Context) int {
	c.samplers.Add(1)
	n := 0
	return func(context.Context) int {
		c.calls.Add(1)
		n++
		return n
	}
}

const iv = 100 * time.Millisecond

func next(t *testing.T, sub *sampler.Subscription[int]) sampler.Update[int] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return u
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFirstValueAtOnceThenPerTick(t *testing.T) {
	clock := samplertest.NewClock()
	var c counter
	hub := sampler.NewHub(c.newCollect, clock.NewTicker)
	defer hub.Close()

	sub, err := hub.Subscribe(iv)
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, sub); u.Seq != 1 || u.Value != 1 || u.Missed != 0 {
		t.Fatalf("first update %+v", u)
	}
	for i := 2; i <= 5; i++ {
		clock.Tick(iv)
		if u := next(t, sub); u.Seq != uint64(i) || u.Value != i || u.Missed != 0 {
			t.Fatalf("update %d: %+v", i, u)
		}
	}
	// A late joiner gets the newest value at once, from the same sampler.
	late, err := hub.Subscribe(iv)
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, late); u.Seq != 5 || u.Value != 5 {
		t.Fatalf("late joiner got %+v", u)
	}
	if c.samplers.Load() != 1 {
		t.Fatalf("%d samplers for one interval", c.samplers.Load())
	}
}

func TestStalledSubscriberMissesWithoutSlowingOthers(t *testing.T) {
	const subscribers, ticks = 100, 200
	clock := samplertest.NewClock()
	var c counter
	hub := sampler.NewHub(c.newCollect, clock.NewTicker)
	defer hub.Close()

	stalled, err := hub.Subscribe(iv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg       sync.WaitGroup
		lastSeq  [subscribers - 1]atomic.Uint64
		received [subscribers - 1]atomic.Int64
		missed   atomic.Uint64
		gapSeen  atomic.Bool
	)
	for i := range subscribers - 1 {
		sub, err := hub.Subscribe(iv)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev uint64
			for {
				u, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if prev != 0 && u.Seq != prev+1 {
					gapSeen.Store(true)
				}
				prev = u.Seq
				missed.Add(u.Missed)
				received[i].Add(1)
				lastSeq[i].Store(u.Seq)
			}
		}()
	}
	allAt := func(seq uint64) func() bool {
		return func() bool {
			for i := range lastSeq {
				if lastSeq[i].Load() < seq {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "first value", allAt(1))
	for k := 2; k <= ticks+1; k++ {
		clock.Tick(iv)
		waitFor(t, "tick to reach every healthy subscriber", allAt(uint64(k)))
	}

	for i := range received {
		if n := received[i].Load(); n != ticks+1 {
			t.Fatalf("healthy subscriber %d got %d updates, want %d", i, n, ticks+1)
		}
	}
	if missed.Load() != 0 || gapSeen.Load() {
		t.Fatalf("healthy subscribers missed %d (gap %v)", missed.Load(), gapSeen.Load())
	}
	if calls := c.calls.Load(); calls != ticks+1 {
		t.Fatalf("collect ran %d times for %d samples: not shared", calls, ticks+1)
	}
	// The stalled subscriber wakes up to the newest value and the count
	// of everything it skipped.
	u := next(t, stalled)
	if u.Seq != ticks+1 || u.Missed != ticks {
		t.Fatalf("stalled subscriber got seq %d missed %d, want %d and %d", u.Seq, u.Missed, ticks+1, ticks)
	}
	if st := hub.Stats(); st.Missed != ticks || st.Subscribers != subscribers || st.Samplers != 1 {
		t.Fatalf("stats %+v", st)
	}
	cancel()
	wg.Wait()
}

func TestOneSamplerPerInterval(t *testing.T) {
	clock := samplertest.NewClock()
	var c counter
	hub := sampler.NewHub(c.newCollect, clock.NewTicker)
	defer hub.Close()

	fast, _ := hub.Subscribe(iv)
	fast2, _ := hub.Subscribe(iv)
	slow, _ := hub.Subscribe(time.Second)
	if c.samplers.Load() != 2 || hub.Stats().Samplers != 2 {
		t.Fatalf("samplers: made %d, running %d; want 2", c.samplers.Load(), hub.Stats().Samplers)
	}
	for _, s := range []*sampler.Subscription[int]{fast, fast2, slow} {
		next(t, s)
	}
	clock.Tick(iv)
	clock.Tick(iv)
	// Both fast subscribers see both ticks of their shared sampler. A reader may wake
	// between the two deliveries (Seq 2, then 3) or after both (Seq 3, one missed).
	for name, s := range map[string]*sampler.Subscription[int]{"fast": fast, "fast2": fast2} {
		u := next(t, s)
		if u.Seq == 2 {
			u = next(t, s)
		}
		if u.Seq != 3 {
			t.Fatalf("%s %+v", name, u)
		}
	}
	clock.Tick(time.Second)
	if u := next(t, slow); u.Seq != 2 || u.Missed != 0 {
		t.Fatalf("slow %+v", u)
	}
}

func TestCancelFreesEverything(t *testing.T) {
	baseline := runtime.NumGoroutine()
	clock := samplertest.NewClock()
	var c counter
	hub := sampler.NewHub(c.newCollect, clock.NewTicker)

	var subs []*sampler.Subscription[int]
	for range 50 {
		s, err := hub.Subscribe(iv)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	blocked := make(chan error)
	go func() {
		_, err := subs[0].Next(context.Background()) // takes the first value
		if err == nil {
			_, err = subs[0].Next(context.Background()) // waits
		}
		blocked <- err
	}()
	for _, s := range subs {
		s.Cancel()
		s.Cancel() // idempotent
	}
	if err := <-blocked; !errors.Is(err, sampler.ErrClosed) {
		t.Fatalf("Next after Cancel: %v, want ErrClosed", err)
	}
	if st := hub.Stats(); st.Samplers != 0 || st.Subscribers != 0 {
		t.Fatalf("after cancelling all: %+v", st)
	}
	waitFor(t, "ticker stopped", func() bool { return !clock.Running(iv) })
	waitFor(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseline })

	// A new subscriber starts a fresh sampler.
	s, err := hub.Subscribe(iv)
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, s); u.Seq != 1 || c.samplers.Load() != 2 {
		t.Fatalf("restarted sampler: %+v, samplers made %d", u, c.samplers.Load())
	}
	hub.Close()
	if _, err := s.Next(context.Background()); !errors.Is(err, sampler.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if _, err := hub.Subscribe(iv); !errors.Is(err, sampler.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	waitFor(t, "goroutines back to baseline after Close", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestNextHonoursContext(t *testing.T) {
	clock := samplertest.NewClock()
	var c counter
	hub := sampler.NewHub(c.newCollect, clock.NewTicker)
	defer hub.Close()
	s, _ := hub.Subscribe(iv)
	next(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestIntervalBounds(t *testing.T) {
	var c counter
	hub := sampler.NewHub(c.newCollect, nil)
	defer hub.Close()
	for _, d := range []time.Duration{0, -time.Second, 99 * time.Millisecond, 2 * time.Hour} {
		if _, err := hub.Subscribe(d); !errors.Is(err, sampler.ErrInterval) {
			t.Errorf("Subscribe(%v): %v, want ErrInterval", d, err)
		}
	}
	if c.samplers.Load() != 0 {
		t.Fatal("a sampler started for a rejected interval")
	}
}

func TestSystemTickerSamples(t *testing.T) {
	var c counter
	hub := sampler.NewHub(c.newCollect, nil)
	defer hub.Close()
	s, err := hub.Subscribe(sampler.MinInterval)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		next(t, s)
	}
}
