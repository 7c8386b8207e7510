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
	table := NewProcessTable(DefaultManagedNames(), func() []ManagedPID {
		return []ManagedPID{{PID: workerPID, Role: RoleDiffusion}, {PID: 999_999_999, Role: RoleLLM}}
	})
	scan, err := table.Scan(ctx, map[int32]bool{int32(stranger.Process.Pid): true})
	if err != nil {
		t.Fatal(err)
	}
	got := scan.Managed
	byPID := map[int32]ProcessReading{}
	for _, r := range got {
		byPID[r.PID] = r
	}
	l, ok := byPID[int32(llama.Process.Pid)]
	if !ok || l.Name != "llama-server" || l.Role != RoleLLM {
		t.Fatalf("llama-server helper not found by name: %+v", got)
	}
	if l.RSS == 0 || l.CreateTime == 0 {
		t.Fatalf("llama-server reading %+v: want RSS and create time", l)
	}
	if w, ok := byPID[workerPID]; !ok || w.Name != "engine-worker" || w.Role != RoleDiffusion {
		t.Fatalf("provided PID not found: %+v", got)
	}
	if _, ok := byPID[int32(stranger.Process.Pid)]; ok {
		t.Fatalf("unmanaged process reported: %+v", got)
	}
	if len(scan.Names) != 1 || scan.Names[int32(stranger.Process.Pid)] != "not-managed" {
		t.Fatalf("names of GPU processes: %v", scan.Names)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].PID >= got[i].PID {
			t.Fatalf("not sorted by PID: %+v", got)
		}
	}

	// Once the engine exits it disappears, and its cache entry with it.
	_ = llama.Process.Kill()
	_ = llama.Wait()
	scan, err = table.Scan(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range scan.Managed {
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
	table := NewProcessTable(DefaultManagedNames(), nil)
	if _, err := table.Scan(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Pretend the cached name is stale (the process exec'd after we read it).
	table.mu.Lock()
	table.cache[pid].name = "sh"
	table.mu.Unlock()
	scan, _ := table.Scan(ctx, nil)
	for _, r := range scan.Managed {
		if r.PID == pid {
			t.Fatal("stale name should hide the process until re-read")
		}
	}
	scan, _ = table.Scan(ctx, map[int32]bool{pid: true})
	found := false
	for _, r := range scan.Managed {
		found = found || (r.PID == pid && r.Role == RoleDiffusion)
	}
	if !found || scan.Names[pid] != "sd-server" {
		t.Fatalf("process on GPU not re-read: %+v", scan)
	}
}
