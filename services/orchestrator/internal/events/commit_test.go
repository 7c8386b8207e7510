package events_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Events are numbered when emitted and written behind the emitter: after Flush every one
// is stored under the id it was delivered with, and a reopened log numbers on from there.
func TestWriteBehindKeepsTheIdsAndFlushStoresEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	log := slog.New(slog.DiscardHandler)
	db, err := state.Open(path, state.Options{MaxEvents: 1000})
	if err != nil {
		t.Fatal(err)
	}
	l := events.New(db, log)
	var ids []uint64
	for i := 0; i < 200; i++ {
		ids = append(ids, l.Emit(queued, "", "j", "e", nil).Id)
	}
	l.Flush()
	stored, err := db.LastEvents(1000)
	if err != nil || len(stored) != len(ids) {
		t.Fatalf("stored %d of %d events (%v)", len(stored), len(ids), err)
	}
	for i, ev := range stored {
		if ev.Id != ids[i] || ev.Id != uint64(i+1) {
			t.Fatalf("event %d stored as id %d, delivered as %d", i, ev.Id, ids[i])
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = state.Open(path, state.Options{MaxEvents: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l = events.New(db, log)
	if id := l.Emit(started, "", "j", "after reopen", nil).Id; id != 201 {
		t.Fatalf("first id after reopen %d, want 201", id)
	}
	l.Flush()
	if last, err := db.LastEvents(1); err != nil || len(last) != 1 || last[0].Id != 201 || last[0].Message != "after reopen" {
		t.Fatalf("last stored %v (%v)", last, err)
	}
}
