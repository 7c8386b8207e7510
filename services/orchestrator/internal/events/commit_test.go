package events_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
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

// EmitWithJob returns once its event, every event emitted before it, and the job record
// are stored (one transaction), and returns the error of a write that failed.
func TestEmitWithJobStoresTheRecordWithItsEvent(t *testing.T) {
	db, err := state.Open(filepath.Join(t.TempDir(), "o.db"), state.Options{MaxEvents: 1000})
	if err != nil {
		t.Fatal(err)
	}
	l := events.New(db, slog.New(slog.DiscardHandler))
	for i := 0; i < 50; i++ {
		l.Emit(queued, "", "j", "before", nil)
	}
	rec := &orchestratorv1.Job{Id: "j", Status: orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED}
	ev, err := l.EmitWithJob(orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED, "", "j", "done", nil, rec)
	if err != nil || ev.Id != 51 {
		t.Fatalf("EmitWithJob: id %d, %v", ev.GetId(), err)
	}
	if j, err := db.Job("j"); err != nil || j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("the record when EmitWithJob returned: %v %v", j, err)
	}
	stored, err := db.LastEvents(1000)
	if err != nil || len(stored) != 51 || stored[50].Id != 51 || stored[50].Message != "done" {
		t.Fatalf("stored %d events, the last %v (%v)", len(stored), stored[len(stored)-1], err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.EmitWithJob(orchestratorv1.EventType_EVENT_TYPE_JOB_FINISHED, "", "k", "done", nil, &orchestratorv1.Job{Id: "k"}); err == nil {
		t.Fatal("a write to a closed database answered no error")
	}
}
