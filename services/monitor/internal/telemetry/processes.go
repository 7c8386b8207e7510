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
	roots RootProvider // nil: a name match suffices
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

// RootProvider returns the PIDs of the host's services (see PIDFileRoots).
// It is called once per sampling pass and must be fast.
type RootProvider func() (map[int32]bool, error)

// RequireAncestor makes a process found by name count as managed only if it
// is, or descends from, one of the processes roots returns: another user's
// sd-cli on the same host is not this host's services' engine. PIDs from the
// PIDProvider still count whatever their ancestry. Call it before the first
// Scan.
func (t *ProcessTable) RequireAncestor(roots RootProvider) { t.roots = roots }

// ProcFact is what attribution knows of one process. PPID 0 means unknown
// (it is read only along the parent chains of processes matched by name).
type ProcFact struct {
	PID, PPID int32
	Name      string
}

// Attribute returns the role of each managed process among procs: the
// provided PIDs (PID -> role) whatever their name, and the processes whose
// name is a key of names (name -> role) that, when roots is not nil, are or
// descend from a root through PPID links within procs. A chain that reaches
// PID 1 or 0 (the process, or an ancestor, was reparented when its parent
// died), loops, or leaves procs does not descend.
func Attribute(procs map[int32]ProcFact, names map[string]string, provided map[int32]string, roots map[int32]bool) map[int32]string {
	out := make(map[int32]string)
	for pid, p := range procs {
		if role, ok := provided[pid]; ok {
			out[pid] = role
			continue
		}
		role, ok := names[p.Name]
		if !ok {
			continue
		}
		if roots == nil || descends(procs, pid, roots) {
			out[pid] = role
		}
	}
	return out
}

func descends(procs map[int32]ProcFact, pid int32, roots map[int32]bool) bool {
	for range len(procs) + 1 { // bounds a (corrupt) loop
		if roots[pid] {
			return true
		}
		p, ok := procs[pid]
		if !ok || p.PPID <= 1 {
			return false
		}
		pid = p.PPID
	}
	return false
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

	var roots map[int32]bool
	var rootsErr error
	if t.roots != nil {
		if roots, rootsErr = t.roots(); roots == nil {
			roots = map[int32]bool{} // unreadable: nothing descends
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.pass++
	now := t.now()
	scan := Scan{Names: make(map[int32]string, len(onGPU))}
	facts := make(map[int32]ProcFact, len(pids))
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
		facts[pid] = ProcFact{PID: pid, Name: e.name}
	}
	if roots != nil {
		t.readParents(ctx, facts, provided, roots)
	}
	for pid, role := range Attribute(facts, t.names, provided, roots) {
		if r, ok := readProcess(ctx, t.cache[pid]); ok {
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
	return scan, rootsErr
}

// readParents fills in the PPIDs along the parent chain of each process
// matched by name (the others' ancestry does not matter), fresh on every
// pass: a process whose parent died is reparented at once.
func (t *ProcessTable) readParents(ctx context.Context, facts map[int32]ProcFact, provided map[int32]string, roots map[int32]bool) {
	read := make(map[int32]bool)
	for pid, f := range facts {
		if _, ok := t.names[f.Name]; !ok {
			continue
		}
		if _, ok := provided[pid]; ok {
			continue
		}
		for !roots[pid] && !read[pid] {
			read[pid] = true
			f, listed := facts[pid]
			e := t.cache[pid]
			if !listed || e == nil {
				break
			}
			ppid, err := e.proc.PpidWithContext(ctx)
			if err != nil {
				break
			}
			f.PPID = ppid
			facts[pid] = f
			if ppid <= 1 {
				break
			}
			pid = ppid
		}
	}
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
