package state_test

// The behaviour every backend of the store shares, run on the bbolt file and on a real
// etcd (one member; the cluster tests are the orchestrator's e2e tests).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// etcdEnds are the client URLs of one real etcd that the tests of this package share,
// each under its own prefix (TestMain); etcdErr says why there is none.
var (
	etcdEnds []string
	etcdErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv("STATE_TEST_CHILD_DB") != "" {
		os.Exit(m.Run()) // TestSavedStateSurvivesSIGKILL's child: no etcd
	}
	dir, err := os.MkdirTemp("", "state-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, err := testenv.RunEtcd(dir, 1)
	if err == nil {
		etcdEnds = c.Endpoints()
	}
	etcdErr = err
	code := m.Run()
	if c != nil {
		c.Kill()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// etcdClient connects to the shared etcd (skips t, or fails it under
// GENAILAB_REQUIRE_ETCD=1, when there is none).
func etcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	testenv.Need(t, testenv.RequireEtcdEnv, etcdErr)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcdEnds, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

type backend struct {
	name string
	open func(t *testing.T, maxEvents int) *state.DB
}

func backends() []backend {
	return []backend{
		{"bbolt", func(t *testing.T, max int) *state.DB { return open(t, filepath.Join(t.TempDir(), "o.db"), max) }},
		{"etcd", func(t *testing.T, max int) *state.DB {
			return state.NewEtcd(etcdClient(t), state.EtcdOptions{Prefix: "/test/" + t.Name() + "/", MaxEvents: max}).DB()
		}},
	}
}

func eachBackend(t *testing.T, fn func(t *testing.T, open func(max int) *state.DB)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, func(max int) *state.DB { return b.open(t, max) }) })
	}
}

func TestStoreSavedStates(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(int) *state.DB) {
		db := open(0)
		if s, err := db.SavedState("a"); err != nil || s != nil {
			t.Fatalf("empty: %v %v", s, err)
		}
		for _, h := range []string{"b", "", "a"} {
			if err := db.PutSavedState(saved(h, "m-"+h)); err != nil {
				t.Fatal(err)
			}
		}
		all, err := db.SavedStates("")
		if err != nil || len(all) != 3 || all[0].GetHost() != "" || all[2].GetHost() != "b" {
			t.Fatalf("all: %v %v", all, err)
		}
		if one, _ := db.SavedStates("a"); len(one) != 1 || one[0].GetLlmConfig().GetModelId() != "m-a" || one[0].GetLlmConfig().GetGpuLayers() != -1 {
			t.Fatalf("one: %v", one)
		}
		if moved, err := db.MoveSavedState("", "a"); err != nil || moved {
			t.Fatalf("moved onto an existing state: %v %v", moved, err)
		}
		if moved, err := db.MoveSavedState("", "c"); err != nil || !moved {
			t.Fatalf("move: %v %v", moved, err)
		}
		if s, _ := db.SavedState("c"); s.GetHost() != "c" || s.GetLlmConfig().GetModelId() != "m-" {
			t.Fatalf("moved: %v", s)
		}
		if n, err := db.ClearSavedState("a"); err != nil || n != 1 {
			t.Fatalf("clear a: %d %v", n, err)
		}
		if n, _ := db.ClearSavedState("a"); n != 0 {
			t.Fatalf("clear a again: %d", n)
		}
		if n, _ := db.ClearSavedState(""); n != 2 {
			t.Fatalf("clear all: %d", n)
		}
	})
}

func TestStoreEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(int) *state.DB) {
		db := open(10)
		for i := 1; i <= 22; i++ {
			ev := &orchestratorv1.Event{Type: orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, Message: fmt.Sprint(i)}
			if err := db.AppendEvent(ev); err != nil || ev.Id != uint64(i) {
				t.Fatalf("event %d: id %d %v", i, ev.Id, err)
			}
		}
		batch := []*orchestratorv1.Event{{Message: "23"}, {Message: "24"}, {Message: "25"}}
		if err := db.AppendEvents(batch); err != nil || batch[2].Id != 25 {
			t.Fatalf("batch: %v %v", batch, err)
		}
		last, _ := db.LastEvents(100)
		if len(last) != 10 || last[0].Id != 16 || last[9].Id != 25 || last[9].Message != "25" {
			t.Fatalf("bounded log: %v", last)
		}
		after, _ := db.EventsAfter(20, 3)
		if len(after) != 3 || after[0].Id != 21 || after[2].Id != 23 {
			t.Fatalf("after 20: %v", after)
		}
		if after, _ := db.EventsAfter(1, 100); len(after) != 10 || after[0].Id != 16 {
			t.Fatalf("after 1: %v", after)
		}
	})
}

func TestStoreJobs(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(int) *state.DB) {
		db := open(0)
		for i := 0; i < 7; i++ {
			st := orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED
			if i%2 == 1 {
				st = orchestratorv1.JobStatus_JOB_STATUS_FAILED
			}
			j := &orchestratorv1.Job{Id: fmt.Sprintf("j%03d", i), Status: st}
			if i == 6 {
				j.Result = resultWithPNG()
			}
			if err := db.PutJob(j); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		for before := ""; ; {
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
		if j, err := db.Job("j006"); err != nil || j.Result.Png != nil || j.Result.Width != 64 {
			t.Fatalf("stored result: %v %v", j, err)
		}
		var all []string
		if err := db.AllJobs(func(j *orchestratorv1.Job) error { all = append(all, j.Id); return nil }); err != nil || len(all) != 7 || all[0] != "j000" {
			t.Fatalf("all: %v %v", all, err)
		}
		if err := db.DeleteJob("j003"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Job("j003"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("deleted job: %v", err)
		}
		if err := db.DeleteJob("j003"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
	})
}

// A job's end and its last event are written in one transaction (the jobs manager's
// finish): both are stored, the event numbered after the log's last, the log bounded, and
// the record without its PNG bytes, as AppendEvents and PutJob store them.
func TestStoreEventsWithJobs(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(int) *state.DB) {
		db := open(3)
		for i := 1; i <= 3; i++ {
			if err := db.AppendEvent(&orchestratorv1.Event{Message: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		done := &orchestratorv1.Job{Id: "j1", Status: orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED, Result: resultWithPNG()}
		failed := &orchestratorv1.Job{Id: "j2", Status: orchestratorv1.JobStatus_JOB_STATUS_FAILED, Error: "no"}
		evs := []*orchestratorv1.Event{{Message: "4"}, {Message: "5", JobId: "j1"}}
		if err := db.AppendEventsWithJobs(evs, []*orchestratorv1.Job{done, failed}); err != nil || evs[0].Id != 4 || evs[1].Id != 5 {
			t.Fatalf("write: %v %v", evs, err)
		}
		if j, err := db.Job("j1"); err != nil || j.GetStatus() != orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED || j.GetResult().GetPng() != nil || j.GetResult().GetWidth() != 64 {
			t.Fatalf("the record written with the events: %v %v", j, err)
		}
		if done.GetResult().GetPng() == nil {
			t.Fatal("the caller's record lost its PNG")
		}
		if j, err := db.Job("j2"); err != nil || j.GetError() != "no" {
			t.Fatalf("the second record: %v %v", j, err)
		}
		if last, _ := db.LastEvents(10); len(last) != 3 || last[0].Id != 3 || last[2].Message != "5" {
			t.Fatalf("bounded log: %v", last)
		}
		// Records alone, and nothing at all.
		if err := db.AppendEventsWithJobs(nil, []*orchestratorv1.Job{{Id: "j3"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Job("j3"); err != nil {
			t.Fatalf("a record without events: %v", err)
		}
		if err := db.AppendEventsWithJobs(nil, nil); err != nil {
			t.Fatal(err)
		}
		if last, _ := db.LastEvents(1); len(last) != 1 || last[0].Id != 5 {
			t.Fatalf("last event after writes without events: %v", last)
		}
	})
}

func TestStoreCorrections(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(int) *state.DB) {
		db := open(0)
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := db.UpdateCorrection("sd", func(c state.Correction) state.Correction {
					c.Samples++
					c.DeltaBytes += 100
					return c
				}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if c, err := db.Correction("sd"); err != nil || c.Samples != 5 || c.DeltaBytes != 500 {
			t.Fatalf("correction: %+v %v", c, err)
		}
	})
}

// A record of a newer schema (or not an envelope) is skipped and counted, never guessed.
func TestEtcdRecordOfAnotherSchemaIsSkipped(t *testing.T) {
	cli := etcdClient(t)
	prefix := "/test/" + t.Name() + "/"
	db := state.NewEtcd(cli, state.EtcdOptions{Prefix: prefix}).DB()
	for i := 1; i <= 3; i++ {
		if err := db.PutJob(&orchestratorv1.Job{Id: fmt.Sprintf("j%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := cli.Put(ctx, prefix+"jobs/j2", `{"schema":2,"kind":"job","value":{"id":"j2"}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+"jobs/j3", `not json`); err != nil {
		t.Fatal(err)
	}
	jobs, _, err := db.ListJobs("", 10, nil)
	if err != nil || len(jobs) != 1 || jobs[0].Id != "j1" {
		t.Fatalf("listing: %v %v", jobs, err)
	}
	if _, err := db.Job("j2"); !errors.Is(err, state.ErrCorruptRecord) || !strings.Contains(err.Error(), "schema 2") {
		t.Fatalf("newer schema: %v", err)
	}
	if db.BadRecords() != 2 || !strings.Contains(db.HealthDetail(), "2 unreadable record(s)") {
		t.Fatalf("bad %d, health %q", db.BadRecords(), db.HealthDetail())
	}
}

// Fencing: a fenced store writes only while its fence key has the creation revision it
// was given; once the key is another (a new leader), its writes fail and change nothing.
func TestEtcdFencedWritesNeedTheFence(t *testing.T) {
	cli := etcdClient(t)
	prefix := "/test/" + t.Name() + "/"
	e := state.NewEtcd(cli, state.EtcdOptions{Prefix: prefix, Fenced: true})
	db := e.DB()
	if err := db.PutJob(&orchestratorv1.Job{Id: "j1"}); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("unfenced write: %v", err)
	}
	ctx := context.Background()
	fence := prefix + "leader/a"
	put, err := cli.Put(ctx, fence, "a")
	if err != nil {
		t.Fatal(err)
	}
	e.Fence(fence, put.Header.Revision)
	if err := db.PutJob(&orchestratorv1.Job{Id: "j1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendEvent(&orchestratorv1.Event{Message: "1"}); err != nil {
		t.Fatal(err)
	}
	// Another leader: the key is deleted (the lease expired) and created again.
	if _, err := cli.Delete(ctx, fence); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, fence, "b"); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"PutJob":        func() error { return db.PutJob(&orchestratorv1.Job{Id: "j2"}) },
		"PutSavedState": func() error { return db.PutSavedState(saved("h", "m")) },
		"AppendEvent":   func() error { return db.AppendEvent(&orchestratorv1.Event{Message: "2"}) },
		"AppendEventsWithJobs": func() error {
			return db.AppendEventsWithJobs([]*orchestratorv1.Event{{Message: "2"}}, []*orchestratorv1.Job{{Id: "j2"}})
		},
		"DeleteJob":        func() error { return db.DeleteJob("j1") },
		"UpdateCorrection": func() error { return db.UpdateCorrection("sd", func(c state.Correction) state.Correction { return c }) },
		"ClearSavedState":  func() error { _, err := db.ClearSavedState(""); return err },
	} {
		if err := write(); !errors.Is(err, state.ErrNotLeader) {
			t.Fatalf("%s by a deposed leader: %v", name, err)
		}
	}
	if _, err := db.Job("j2"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a deposed leader's job was written: %v", err)
	}
	if _, err := db.Job("j1"); err != nil {
		t.Fatalf("a deposed leader deleted a job: %v", err)
	}
	if evs, _ := db.LastEvents(10); len(evs) != 1 {
		t.Fatalf("events: %v", evs)
	}
}
