package telemetry

import (
	"context"
	"testing"
)

func TestProcessTableFindsManagedByNameAndPID(t *testing.T) {
	ctx := context.Background()
	llama := startHelper(t, "llama-server", "sleep")
	worker := startHelper(t, "engine-worker", "sleep")
	stranger := startHelper(t, "not-managed", "sleep")

	workerPID := int32(worker.Process.Pid)
	table := NewProcessTable(DefaultManagedNames, func() []int32 { return []int32{workerPID, 999_999_999} })
	got, err := table.Managed(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	byPID := map[int32]ProcessReading{}
	for _, r := range got {
		byPID[r.PID] = r
	}
	l, ok := byPID[int32(llama.Process.Pid)]
	if !ok || l.Name != "llama-server" {
		t.Fatalf("llama-server helper not found by name: %+v", got)
	}
	if l.RSS == 0 || l.CreateTime == 0 {
		t.Fatalf("llama-server reading %+v: want RSS and create time", l)
	}
	if w, ok := byPID[workerPID]; !ok || w.Name != "engine-worker" {
		t.Fatalf("provided PID not found: %+v", got)
	}
	if _, ok := byPID[int32(stranger.Process.Pid)]; ok {
		t.Fatalf("unmanaged process reported: %+v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].PID >= got[i].PID {
			t.Fatalf("not sorted by PID: %+v", got)
		}
	}

	// Once the engine exits it disappears, and its cache entry with it.
	_ = llama.Process.Kill()
	_ = llama.Wait()
	got, err = table.Managed(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.PID == int32(llama.Process.Pid) {
			t.Fatalf("exited process still reported: %+v", r)
		}
	}
	table.mu.Lock()
	_, cached := table.cache[int32(llama.Process.Pid)]
	table.mu.Unlock()
	if cached {
		t.Fatal("exited process still cached")
	}
}

func TestProcessTableRereadsUnrecognisedGPUProcess(t *testing.T) {
	ctx := context.Background()
	sd := startHelper(t, "sd-server", "sleep")
	pid := int32(sd.Process.Pid)
	table := NewProcessTable(DefaultManagedNames, nil)
	if _, err := table.Managed(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Pretend the cached name is stale (the process exec'd after we read it).
	table.mu.Lock()
	table.cache[pid].name = "sh"
	table.mu.Unlock()
	got, _ := table.Managed(ctx, nil)
	for _, r := range got {
		if r.PID == pid {
			t.Fatal("stale name should hide the process until re-read")
		}
	}
	got, _ = table.Managed(ctx, map[int32]bool{pid: true})
	found := false
	for _, r := range got {
		found = found || r.PID == pid
	}
	if !found {
		t.Fatalf("process on GPU not re-read: %+v", got)
	}
}
