package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
)

// Host reads CPU, memory, swap and disk through gopsutil.
type Host struct {
	dataDir string
}

// NewHost returns a Host that measures the disk holding dataDir.
func NewHost(dataDir string) *Host { return &Host{dataDir: dataDir} }

// CPUInfo is the static description of the processor.
type CPUInfo struct {
	Model    string
	Physical int
	Logical  int
}

// CPUInfo reads the CPU model and core counts. Counts that cannot be read
// are 0 (RecommendedThreads copes with that).
func (h *Host) CPUInfo(ctx context.Context) (CPUInfo, error) {
	var info CPUInfo
	var errs []error
	stats, err := cpu.InfoWithContext(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("cpu info: %w", err))
	}
	if len(stats) > 0 {
		info.Model = stats[0].ModelName
	}
	if info.Physical, err = cpu.CountsWithContext(ctx, false); err != nil {
		errs = append(errs, fmt.Errorf("physical cores: %w", err))
	}
	if info.Logical, err = cpu.CountsWithContext(ctx, true); err != nil {
		errs = append(errs, fmt.Errorf("logical cores: %w", err))
	}
	return info, errors.Join(errs...)
}

// Identity returns the host name and a description of the operating
// system ("debian 13.1 (linux 6.12.0-amd64)"); "" for what cannot be read.
func (h *Host) Identity(ctx context.Context) (hostname, osName string) {
	info, err := host.InfoWithContext(ctx)
	if err != nil || info == nil {
		return "", ""
	}
	osName = info.OS
	if info.Platform != "" {
		osName = info.Platform
		if info.PlatformVersion != "" {
			osName += " " + info.PlatformVersion
		}
		osName += " (" + info.OS
		if info.KernelVersion != "" {
			osName += " " + info.KernelVersion
		}
		osName += ")"
	}
	return info.Hostname, osName
}

// CPUTimes reads the per-core time counters.
func (h *Host) CPUTimes(ctx context.Context) ([]cpu.TimesStat, error) {
	t, err := cpu.TimesWithContext(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("cpu times: %w", err)
	}
	return t, nil
}

// Memory reads physical memory.
func (h *Host) Memory(ctx context.Context) (Memory, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return Memory{}, fmt.Errorf("virtual memory: %w", err)
	}
	return Memory{Total: v.Total, Available: v.Available, Used: v.Used}, nil
}

// Swap reads swap space.
func (h *Host) Swap(ctx context.Context) (Swap, error) {
	s, err := mem.SwapMemoryWithContext(ctx)
	if err != nil {
		return Swap{}, fmt.Errorf("swap memory: %w", err)
	}
	return Swap{Total: s.Total, Used: s.Used, Free: s.Free}, nil
}

// Disk reads the file system holding the data directory. A data directory
// that does not exist yet is measured at its nearest existing parent.
func (h *Host) Disk(ctx context.Context) (Disk, error) {
	path, err := existingAncestor(h.dataDir)
	if err != nil {
		return Disk{}, fmt.Errorf("data dir %q: %w", h.dataDir, err)
	}
	u, err := disk.UsageWithContext(ctx, path)
	if err != nil {
		return Disk{}, fmt.Errorf("disk usage of %q: %w", path, err)
	}
	return Disk{Path: path, Total: u.Total, Free: u.Free, Used: u.Used}, nil
}

// existingAncestor returns dir made absolute, or the closest parent of it
// that exists.
func existingAncestor(dir string) (string, error) {
	p, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		p = parent
	}
}
