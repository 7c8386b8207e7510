package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/supervisor"
)

// A host with the stack (launcher 100 -> services llm 200, diffusion 300),
// its engines, and another user's sd-cli under their own shell.
var hostFixture = map[int32]ProcFact{
	1:   {PID: 1, PPID: 0, Name: "systemd"},
	100: {PID: 100, PPID: 1, Name: "genailab"},
	200: {PID: 200, PPID: 100, Name: "genailab-llm"},
	300: {PID: 300, PPID: 100, Name: "genailab-diffusion"},
	201: {PID: 201, PPID: 200, Name: "llama-server"}, // child of a service
	310: {PID: 310, PPID: 300, Name: "sh"},
	311: {PID: 311, PPID: 310, Name: "sd-cli"},        // grandchild of a service
	400: {PID: 400, PPID: 1, Name: "bash"},            // another user's shell
	401: {PID: 401, PPID: 400, Name: "sd-cli"},        // foreign: other parent
	402: {PID: 402, PPID: 1, Name: "sd-server"},       // orphan: its parent died
	403: {PID: 403, PPID: 404, Name: "sd"},            // parent not listed
	500: {PID: 500, PPID: 200, Name: "not-an-engine"}, // a service's child, unknown name
}

var stackRoots = map[int32]bool{200: true, 300: true}

func TestAttributeRequiresAServiceAncestor(t *testing.T) {
	got := Attribute(hostFixture, DefaultManagedNames(), nil, stackRoots)
	want := map[int32]string{201: RoleLLM, 311: RoleDiffusion}
	if !maps.Equal(got, want) {
		t.Fatalf("managed %v, want %v", got, want)
	}
}

func TestAttributeWithoutRootsMatchesByName(t *testing.T) {
	got := Attribute(hostFixture, DefaultManagedNames(), nil, nil)
	want := map[int32]string{201: RoleLLM, 311: RoleDiffusion, 401: RoleDiffusion, 402: RoleDiffusion, 403: RoleDiffusion}
	if !maps.Equal(got, want) {
		t.Fatalf("managed %v, want %v", got, want)
	}
}

func TestAttributeEdgeCases(t *testing.T) {
	names := DefaultManagedNames()
	// Provided PIDs count whatever their name or ancestry.
	got := Attribute(hostFixture, names, map[int32]string{400: RoleLLM, 999: RoleLLM}, stackRoots)
	if got[400] != RoleLLM || len(got) != 3 {
		t.Fatalf("provided: %v", got)
	}
	// A root that is itself an engine counts.
	if got := Attribute(hostFixture, names, nil, map[int32]bool{402: true}); !maps.Equal(got, map[int32]string{402: RoleDiffusion}) {
		t.Fatalf("engine as root: %v", got)
	}
	// No roots readable: nothing descends.
	if got := Attribute(hostFixture, names, nil, map[int32]bool{}); len(got) != 0 {
		t.Fatalf("empty roots: %v", got)
	}
	// A PPID loop (corrupt facts) terminates and does not descend.
	loop := map[int32]ProcFact{10: {PID: 10, PPID: 11, Name: "sd-cli"}, 11: {PID: 11, PPID: 10, Name: "sh"}}
	if got := Attribute(loop, names, nil, stackRoots); len(got) != 0 {
		t.Fatalf("loop: %v", got)
	}
}

func TestPIDFileRoots(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The supervisor's own record of a live process (this test), and an older file
	// without start time of another live process: both are roots.
	if _, err := supervisor.WritePidFile(dir, "llm", os.Getpid()); err != nil {
		t.Fatal(err)
	}
	svc := startHelper(t, "genailab-diffusion", "sleep")
	write("diffusion.pid", fmt.Sprintf(`{"name":"diffusion","pid":%d}`, svc.Process.Pid))
	write("llm.addr", "127.0.0.1:1")
	write("llm.pid.tmp123", `{"pid":777}`)
	write("bad.pid", `not json`)
	roots, err := PIDFileRoots(dir)()
	if !maps.Equal(roots, map[int32]bool{int32(os.Getpid()): true, int32(svc.Process.Pid): true}) {
		t.Fatalf("roots %v", roots)
	}
	if err == nil || !strings.Contains(err.Error(), "bad.pid") {
		t.Fatalf("err %v: want bad.pid reported", err)
	}
	roots, err = PIDFileRoots(filepath.Join(dir, "missing"))()
	if err == nil || roots == nil || len(roots) != 0 {
		t.Fatalf("missing dir: %v %v", roots, err)
	}
}

// TestStalePidFileWithARecycledPidIsNotARoot (issue 15, edge 1): a pid file left behind by
// a service that is gone, whose pid now belongs to another process (another start time
// than the one recorded), does not make that process — nor the engines under it — this
// host's; a pid file of a process that exited is skipped.
func TestStalePidFileWithARecycledPidIsNotARoot(t *testing.T) {
	dir := t.TempDir()
	foreign := startHelper(t, "bash", "sleep") // holds the pid the stale file names
	path, err := supervisor.WritePidFile(dir, "llm", foreign.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := supervisor.ReadPidFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if roots, _ := PIDFileRoots(dir)(); !roots[int32(foreign.Process.Pid)] {
		t.Fatalf("the recorded process itself is not a root: %v", roots)
	}
	// The recorded service started at another time: the pid was reused since.
	rec.StartTicks--
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	roots, err := PIDFileRoots(dir)()
	if err != nil || roots[int32(foreign.Process.Pid)] || len(roots) != 0 {
		t.Fatalf("a stale pid file with a recycled pid: roots %v, %v", roots, err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	rec.Name, rec.Pid = "gone", gone.Process.Pid
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, "gone.pid"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if roots, err := PIDFileRoots(dir)(); err != nil || len(roots) != 0 {
		t.Fatalf("an exited process's pid file: roots %v, %v", roots, err)
	}
}

// With a pid dir, an engine counts only under one of its processes: the
// helpers are this test process's children, so they descend from it and
// not from an unrelated root.
func TestProcessTableRequiresAncestor(t *testing.T) {
	ctx := context.Background()
	llama := startHelper(t, "llama-server", "sleep")
	other := startHelper(t, "sd-cli", "sleep")
	llamaPID, otherPID := int32(llama.Process.Pid), int32(other.Process.Pid)

	var roots map[int32]bool
	table := NewProcessTable(DefaultManagedNames(), nil)
	table.RequireAncestor(func() (map[int32]bool, error) { return roots, nil })
	managed := func() map[int32]string {
		t.Helper()
		scan, err := table.Scan(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int32]string{}
		for _, r := range scan.Managed {
			if r.PID == llamaPID || r.PID == otherPID {
				m[r.PID] = r.Role
			}
		}
		return m
	}

	roots = map[int32]bool{int32(os.Getpid()): true}
	if got := managed(); !maps.Equal(got, map[int32]string{llamaPID: RoleLLM, otherPID: RoleDiffusion}) {
		t.Fatalf("children of the root: %v", got)
	}
	roots = map[int32]bool{llamaPID: true} // sd-cli is not llama-server's child
	if got := managed(); !maps.Equal(got, map[int32]string{llamaPID: RoleLLM}) {
		t.Fatalf("root = llama-server: %v", got)
	}
	roots = nil // unreadable pid dir
	if got := managed(); len(got) != 0 {
		t.Fatalf("no roots: %v", got)
	}
}
