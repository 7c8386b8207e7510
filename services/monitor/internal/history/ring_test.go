package history

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestRingKeepsNewestInOrder(t *testing.T) {
	r := NewRing[int](DefaultCapacity)
	if _, ok := r.Latest(); ok || r.Len() != 0 || len(r.Since(time.Time{})) != 0 {
		t.Fatal("new ring not empty")
	}
	// Seven and a half minutes at 1 s: only the last five minutes remain.
	const total = 450
	for i := range total {
		r.Add(at(i), i)
	}
	all := r.Since(time.Time{})
	if len(all) != DefaultCapacity || r.Len() != DefaultCapacity || r.Cap() != DefaultCapacity {
		t.Fatalf("len %d/%d, want %d", len(all), r.Len(), DefaultCapacity)
	}
	for i, e := range all {
		want := total - DefaultCapacity + i
		if e.Value != want || !e.Time.Equal(at(want)) {
			t.Fatalf("entry %d = %d at %v, want %d", i, e.Value, e.Time, want)
		}
	}
	if span := all[len(all)-1].Time.Sub(all[0].Time); span != 5*time.Minute-time.Second {
		t.Fatalf("span %v", span)
	}
	if l, ok := r.Latest(); !ok || l.Value != total-1 {
		t.Fatalf("latest %+v", l)
	}
}

func TestRingSince(t *testing.T) {
	r := NewRing[int](10)
	for i := range 25 { // holds 15..24
		r.Add(at(i), i)
	}
	cases := []struct {
		since      time.Time
		first, len int
	}{
		{time.Time{}, 15, 10},
		{at(20), 21, 4},
		{at(20).Add(-time.Millisecond), 20, 5},
		{at(3), 15, 10},
		{at(23), 24, 1},
		{at(24), 0, 0},
		{at(30), 0, 0},
	}
	for _, c := range cases {
		got := r.Since(c.since)
		if len(got) != c.len || (c.len > 0 && got[0].Value != c.first) {
			t.Errorf("Since(%v): %d entries starting %v, want %d starting %d", c.since, len(got), got, c.len, c.first)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Value != got[i-1].Value+1 {
				t.Errorf("Since(%v) out of order: %v", c.since, got)
			}
		}
	}
}

func TestRingDropsOutOfOrder(t *testing.T) {
	r := NewRing[int](4)
	r.Add(at(5), 5)
	r.Add(at(3), 3)
	r.Add(at(5), 6) // same instant is fine
	got := r.Since(time.Time{})
	if len(got) != 2 || got[0].Value != 5 || got[1].Value != 6 {
		t.Fatalf("got %v", got)
	}
}

func TestRingConcurrent(t *testing.T) {
	r := NewRing[int](50)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 1000 {
			r.Add(at(i), i)
		}
	}()
	go func() {
		defer wg.Done()
		for range 1000 {
			es := r.Since(time.Time{})
			for i := 1; i < len(es); i++ {
				if es[i].Value != es[i-1].Value+1 {
					t.Errorf("torn read: %v", es)
					return
				}
			}
		}
	}()
	wg.Wait()
}
