package telemetry

import (
	"context"
	"path/filepath"
	"testing"
)

func TestHostReadsPlausibleNumbers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := NewHost(dir)

	m, err := h.Memory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !(m.Total > m.Available && m.Available > 0) {
		t.Fatalf("memory total=%d available=%d: want total > available > 0", m.Total, m.Available)
	}
	if m.Used == 0 || m.Used > m.Total {
		t.Fatalf("memory used=%d total=%d", m.Used, m.Total)
	}

	s, err := h.Swap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Used > s.Total {
		t.Fatalf("swap used=%d > total=%d", s.Used, s.Total)
	}

	d, err := h.Disk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Path != dir || !(d.Total > d.Free && d.Free > 0) {
		t.Fatalf("disk %+v: want path %s and total > free > 0", d, dir)
	}

	ci, err := h.CPUInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Logical < 1 || ci.Physical < 1 || ci.Physical > ci.Logical {
		t.Fatalf("cpu info %+v: want 1 <= physical <= logical", ci)
	}

	cores, err := h.CPUTimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cores) != ci.Logical {
		t.Fatalf("%d per-core counters, want %d", len(cores), ci.Logical)
	}
}

func TestHostDiskOfMissingDataDirMeasuresParent(t *testing.T) {
	base := t.TempDir()
	h := NewHost(filepath.Join(base, "not", "yet", "created"))
	d, err := h.Disk(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Path != base || d.Free == 0 {
		t.Fatalf("disk %+v: want measured at %s", d, base)
	}
}
