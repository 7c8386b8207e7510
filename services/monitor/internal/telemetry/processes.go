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

// DefaultManagedNames are the executable names of the engines genailab's
// services run: llama.cpp's server and stable-diffusion.cpp's CLI/server.
var DefaultManagedNames = []string{"llama-server", "sd-cli", "sd", "sd-server"}

// PIDProvider returns the PIDs of processes the host's services currently
// run (e.g. reported by the llm and diffusion services' supervisors).
type PIDProvider func() []int32

// nameTTL bounds how long a cached executable name is trusted: a PID may be
// reused, or a process may exec another program. Names of PIDs seen on a
// GPU but not recognised are re-read on every pass.
const nameTTL = 10 * time.Second

// ProcessTable finds managed processes — by PID from a PIDProvider, and by
// executable name — and reads their resident memory and CPU time through
// gopsutil. Names are cached per PID so that a pass reads the process list
// and the few managed processes, not every process's status file.
type ProcessTable struct {
	names map[string]bool
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
	CreateTime int64   // ms since epoch; distinguishes a reused PID
	RSS        uint64  // bytes
	CPUSeconds float64 // user+system since start
}

// NewProcessTable matches processes named in names (executable base name)
// or listed by pids; either may be empty or nil.
func NewProcessTable(names []string, pids PIDProvider) *ProcessTable {
	t := &ProcessTable{
		names: make(map[string]bool, len(names)),
		pids:  pids,
		now:   time.Now,
		cache: make(map[int32]*procEntry),
	}
	for _, n := range names {
		t.names[n] = true
	}
	return t
}

// Managed lists the managed processes running now, sorted by PID. onGPU is
// the set of PIDs NVML reports on any GPU: an unrecognised one has its name
// re-read, so an engine that just exec'd is attributed at once.
func (t *ProcessTable) Managed(ctx context.Context, onGPU map[int32]bool) ([]ProcessReading, error) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var provided map[int32]bool
	if t.pids != nil {
		list := t.pids()
		provided = make(map[int32]bool, len(list))
		for _, pid := range list {
			provided[pid] = true
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.pass++
	now := t.now()
	var out []ProcessReading
	for _, pid := range pids {
		e := t.cache[pid]
		if e == nil || now.Sub(e.resolved) > nameTTL || (onGPU[pid] && !t.names[e.name]) {
			e = t.resolve(ctx, pid, now)
			if e == nil {
				continue // exited meanwhile
			}
		}
		e.seen = t.pass
		if !t.names[e.name] && !provided[pid] {
			continue
		}
		r, ok := readProcess(ctx, e)
		if ok {
			out = append(out, r)
		}
	}
	for pid, e := range t.cache {
		if e.seen != t.pass {
			delete(t.cache, pid)
		}
	}
	slices.SortFunc(out, func(a, b ProcessReading) int { return cmp.Compare(a.PID, b.PID) })
	return out, nil
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
