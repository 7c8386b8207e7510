package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// Roles of managed processes, as the API reports them.
const (
	RoleLLM       = "llm"
	RoleDiffusion = "diffusion"
)

// DefaultManagedNames maps the executable names of the engines genailab's
// services run — llama.cpp's server, stable-diffusion.cpp's CLI and server —
// to their roles.
func DefaultManagedNames() map[string]string {
	return map[string]string{
		"llama-server": RoleLLM,
		"sd-cli":       RoleDiffusion,
		"sd":           RoleDiffusion,
		"sd-server":    RoleDiffusion,
	}
}

// ManagedPID is a process a host service reports running.
type ManagedPID struct {
	PID  int32
	Role string
}

// PIDProvider returns the processes the host's services currently run
// (e.g. as reported by the llm and diffusion services' supervisors). It is
// called once per sampling pass and must be fast and safe for concurrent use.
type PIDProvider func() []ManagedPID

// nameTTL bounds how long a cached executable name is trusted: a PID may be
// reused, or a process may exec another program. Names of PIDs seen on a
// GPU but not recognised are re-read on every pass.
const nameTTL = 10 * time.Second

// ProcessTable finds managed processes — by PID from a PIDProvider, and by
// executable name — and reads their resident memory and CPU time through
// gopsutil. Names are cached per PID so that a pass reads the process list
// and the few managed processes, not every process's status file.
type ProcessTable struct {
	names map[string]string // executable name -> role
	pids  PIDProvider
	now   func() time.Time

	mu    sync.Mutex
	pass  uint64
	cache map[int32]*procEntry
}

type procEntry struct {
	proc     *process.Process
	name     string
	resolved time.Time
	seen     uint64 // pass in which the PID was last listed
}

// ProcessReading is one managed process's raw counters.
type ProcessReading struct {
	PID        int32
	Name       string
	Role       string
	CreateTime int64   // ms since epoch; distinguishes a reused PID
	RSS        uint64  // bytes
	CPUSeconds float64 // user+system since start
}

// Scan is one pass over the process table.
type Scan struct {
	// Managed are the managed processes running, sorted by PID.
	Managed []ProcessReading
	// Names holds the executable names of the PIDs asked about (those on
	// a GPU) that are visible here.
	Names map[int32]string
}

// NewProcessTable matches processes whose executable name is a key of names
// (the value is the role) or that pids lists; either may be nil.
func NewProcessTable(names map[string]string, pids PIDProvider) *ProcessTable {
	return &ProcessTable{
		names: names,
		pids:  pids,
		now:   time.Now,
		cache: make(map[int32]*procEntry),
	}
}

// Scan lists the managed processes running now and names the PIDs in
// onGPU (those NVML reports on a GPU). An unrecognised PID on a GPU has its
// name re-read, so an engine that just exec'd is attributed at once.
func (t *ProcessTable) Scan(ctx context.Context, onGPU map[int32]bool) (Scan, error) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return Scan{}, fmt.Errorf("list processes: %w", err)
	}
	var provided map[int32]string
	if t.pids != nil {
		list := t.pids()
		provided = make(map[int32]string, len(list))
		for _, p := range list {
			provided[p.PID] = p.Role
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.pass++
	now := t.now()
	scan := Scan{Names: make(map[int32]string, len(onGPU))}
	for _, pid := range pids {
		e := t.cache[pid]
		_, known := t.names[nameOf(e)]
		if e == nil || now.Sub(e.resolved) > nameTTL || (onGPU[pid] && !known) {
			if e = t.resolve(ctx, pid, now); e == nil {
				continue // exited meanwhile
			}
		}
		e.seen = t.pass
		if onGPU[pid] {
			scan.Names[pid] = e.name
		}
		role, byName := t.names[e.name]
		if r, ok := provided[pid]; ok {
			role = r
		} else if !byName {
			continue
		}
		if r, ok := readProcess(ctx, e); ok {
			r.Role = role
			scan.Managed = append(scan.Managed, r)
		}
	}
	for pid, e := range t.cache {
		if e.seen != t.pass {
			delete(t.cache, pid)
		}
	}
	slices.SortFunc(scan.Managed, func(a, b ProcessReading) int { return cmp.Compare(a.PID, b.PID) })
	return scan, nil
}

func nameOf(e *procEntry) string {
	if e == nil {
		return ""
	}
	return e.name
}

func (t *ProcessTable) resolve(ctx context.Context, pid int32, now time.Time) *procEntry {
	p, err := process.NewProcessWithContext(ctx, pid)
	if err != nil {
		delete(t.cache, pid)
		return nil
	}
	name, err := p.NameWithContext(ctx)
	if err != nil {
		delete(t.cache, pid)
		return nil
	}
	e := &procEntry{proc: p, name: name, resolved: now}
	t.cache[pid] = e
	return e
}

func readProcess(ctx context.Context, e *procEntry) (ProcessReading, bool) {
	times, err := e.proc.TimesWithContext(ctx)
	if err != nil {
		return ProcessReading{}, false
	}
	memInfo, err := e.proc.MemoryInfoWithContext(ctx)
	if err != nil {
		return ProcessReading{}, false
	}
	created, _ := e.proc.CreateTimeWithContext(ctx)
	return ProcessReading{
		PID:        e.proc.Pid,
		Name:       e.name,
		CreateTime: created,
		RSS:        memInfo.RSS,
		CPUSeconds: times.User + times.System,
	}, true
}
