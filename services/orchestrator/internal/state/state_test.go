package state_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

func open(t *testing.T, path string, max int) *state.DB {
	t.Helper()
	db, err := state.Open(path, state.Options{MaxEvents: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func saved(host, model string) *orchestratorv1.SavedState {
	return &orchestratorv1.SavedState{
		Host: host, WasRunning: true, SavedAt: timestamppb.Now(), Reason: "job-1",
		LlmConfig: &llmv1.LLMConfig{ModelId: model, ContextSize: 256, Port: 41234, GpuLayers: proto.Int32(-1)},
	}
}

func TestSavedStateRoundTripAndClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	db := open(t, path, 0)
	if s, err := db.SavedState(""); err != nil || s != nil {
		t.Fatalf("empty db: %v %v", s, err)
	}
	if err := db.PutSavedState(saved("", "tiny")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSavedState(saved("gpu-box", "big")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = open(t, path, 0) // survives a reopen
	s, err := db.SavedState("")
	if err != nil || s == nil {
		t.Fatalf("after reopen: %v %v", s, err)
	}
	if s.GetLlmConfig().GetModelId() != "tiny" || s.GetLlmConfig().GetGpuLayers() != -1 || !s.GetWasRunning() {
		t.Fatalf("round trip changed the state: %v", s)
	}
	all, _ := db.SavedStates("")
	if len(all) != 2 {
		t.Fatalf("want 2 states, got %d", len(all))
	}
	if n, err := db.ClearSavedState("gpu-box"); err != nil || n != 1 {
		t.Fatalf("clear one: %d %v", n, err)
	}
	if n, _ := db.ClearSavedState("gpu-box"); n != 0 {
		t.Fatalf("clearing again removed %d", n)
	}
	if n, _ := db.ClearSavedState(""); n != 1 {
		t.Fatalf("clear all removed %d", n)
	}
	if all, _ := db.SavedStates(""); len(all) != 0 {
		t.Fatalf("states left: %v", all)
	}
}

func TestEventsAreBoundedAndOrdered(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "o.db"), 10)
	for i := 1; i <= 25; i++ {
		ev := &orchestratorv1.Event{Type: orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, Message: fmt.Sprint(i)}
		if err := db.AppendEvent(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Id != uint64(i) {
			t.Fatalf("event %d got id %d", i, ev.Id)
		}
	}
	last, err := db.LastEvents(100)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 10 || last[0].Id != 16 || last[9].Id != 25 {
		t.Fatalf("bounded log: %d events, first %d last %d", len(last), last[0].Id, last[len(last)-1].Id)
	}
	after, _ := db.EventsAfter(20, 3)
	if len(after) != 3 || after[0].Id != 21 || after[2].Id != 23 {
		t.Fatalf("after 20: %v", after)
	}
	after, _ = db.EventsAfter(1, 100) // older than the log: starts at the oldest kept
	if len(after) != 10 || after[0].Id != 16 {
		t.Fatalf("after 1: %d events from %d", len(after), after[0].Id)
	}
	three, _ := db.LastEvents(3)
	if len(three) != 3 || three[0].Id != 23 {
		t.Fatalf("last 3: %v", three)
	}
}

func TestJobsListNewestFirstWithPages(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "o.db"), 0)
	for i := 0; i < 7; i++ {
		st := orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED
		if i%2 == 1 {
			st = orchestratorv1.JobStatus_JOB_STATUS_FAILED
		}
		j := &orchestratorv1.Job{Id: fmt.Sprintf("j%03d", i), Status: st}
		if i == 0 {
			j.Result = nil
		}
		if err := db.PutJob(j); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	before := ""
	for {
		page, next, err := db.ListJobs(before, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			ids = append(ids, j.Id)
		}
		if next == "" {
			break
		}
		before = next
	}
	if fmt.Sprint(ids) != "[j006 j005 j004 j003 j002 j001 j000]" {
		t.Fatalf("pages: %v", ids)
	}
	failed, next, _ := db.ListJobs("", 10, func(j *orchestratorv1.Job) bool { return j.Status == orchestratorv1.JobStatus_JOB_STATUS_FAILED })
	if len(failed) != 3 || next != "" || failed[0].Id != "j005" {
		t.Fatalf("filtered: %v next %q", failed, next)
	}
	if err := db.DeleteJob("j003"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Job("j003"); err == nil {
		t.Fatal("deleted job still there")
	}
	if err := db.DeleteJob("j003"); err == nil {
		t.Fatal("deleting twice succeeded")
	}
}

func TestPutJobNeverStoresImageBytes(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "o.db"), 0)
	j := &orchestratorv1.Job{Id: "j1"}
	j.Result = resultWithPNG()
	if err := db.PutJob(j); err != nil {
		t.Fatal(err)
	}
	if j.Result.Png == nil {
		t.Fatal("PutJob modified the caller's job")
	}
	got, err := db.Job("j1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Result.Png != nil || got.Result.Width != 64 {
		t.Fatalf("stored result: %v", got.Result)
	}
}

func TestCorrections(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "o.db"), 0)
	for i := 0; i < 3; i++ {
		if err := db.UpdateCorrection("sd", func(c state.Correction) state.Correction {
			c.Samples++
			c.DeltaBytes += 100
			return c
		}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := db.Correction("sd")
	if err != nil || c.Samples != 3 || c.DeltaBytes != 300 {
		t.Fatalf("correction: %+v %v", c, err)
	}
	if c, _ := db.Correction("other"); c.Samples != 0 {
		t.Fatalf("unknown model: %+v", c)
	}
}

// TestSavedStateSurvivesSIGKILL stores a state in a child process, kills it with SIGKILL
// right after PutSavedState returned, and reads the state back.
func TestSavedStateSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("STATE_TEST_CHILD_DB"); path != "" {
		db, err := state.Open(path, state.Options{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if err := db.PutSavedState(saved("", "tiny")); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("stored")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "o.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSavedStateSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "STATE_TEST_CHILD_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "stored\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", line)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	db := open(t, path, 0)
	s, err := db.SavedState("")
	if err != nil || s == nil || s.GetLlmConfig().GetModelId() != "tiny" {
		t.Fatalf("state after SIGKILL: %v %v", s, err)
	}
}

// TestSavedStateOfTheUnnamedLocalHostMovesToItsName: the local host was once named "", and
// its saved LLM state kept under that name; MoveSavedState gives it to "local" (so that it
// is reloaded), and never overwrites a state the new name has already.
func TestSavedStateOfTheUnnamedLocalHostMovesToItsName(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "o.db"), 0)
	if moved, err := db.MoveSavedState("", "local"); err != nil || moved {
		t.Fatalf("nothing to move: %v %v", moved, err)
	}
	if err := db.PutSavedState(saved("", "tiny")); err != nil {
		t.Fatal(err)
	}
	if moved, err := db.MoveSavedState("", "local"); err != nil || !moved {
		t.Fatalf("move: %v %v", moved, err)
	}
	s, err := db.SavedState("local")
	if err != nil || s.GetHost() != "local" || s.GetLlmConfig().GetModelId() != "tiny" {
		t.Fatalf("moved state: %v %v", s, err)
	}
	if all, _ := db.SavedStates(""); len(all) != 1 {
		t.Fatalf("states after the move: %v", all)
	}
	if err := db.PutSavedState(saved("", "other")); err != nil {
		t.Fatal(err)
	}
	if moved, err := db.MoveSavedState("", "local"); err != nil || moved {
		t.Fatalf("overwrote local's state: %v %v", moved, err)
	}
	if s, _ := db.SavedState("local"); s.GetLlmConfig().GetModelId() != "tiny" {
		t.Fatalf("local's state replaced: %v", s)
	}
}
