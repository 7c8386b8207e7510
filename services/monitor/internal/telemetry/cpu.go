package telemetry

import "github.com/shirou/gopsutil/v4/cpu"

// BusyPercent is the share of CPU time spent busy between two readings of
// the same CPU's counters, in percent (0-100). Guest time is already counted
// in user time on Linux, and idle plus iowait is idle.
func BusyPercent(prev, cur cpu.TimesStat) float64 {
	prevAll, prevBusy := allAndBusy(prev)
	curAll, curBusy := allAndBusy(cur)
	all := curAll - prevAll
	if all <= 0 || curBusy <= prevBusy {
		return 0
	}
	return min(100, (curBusy-prevBusy)/all*100)
}

func allAndBusy(t cpu.TimesStat) (all, busy float64) {
	all = t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	return all, all - t.Idle - t.Iowait
}

// SumTimes adds per-core counters into one machine-wide reading.
func SumTimes(cores []cpu.TimesStat) cpu.TimesStat {
	total := cpu.TimesStat{CPU: "cpu-total"}
	for _, c := range cores {
		total.User += c.User
		total.System += c.System
		total.Idle += c.Idle
		total.Nice += c.Nice
		total.Iowait += c.Iowait
		total.Irq += c.Irq
		total.Softirq += c.Softirq
		total.Steal += c.Steal
		total.Guest += c.Guest
		total.GuestNice += c.GuestNice
	}
	return total
}

// ProcessCPUPercent is a process's CPU use between two readings of its
// user+system seconds taken wallSeconds apart; 100 means one core busy.
func ProcessCPUPercent(prevCPUSeconds, curCPUSeconds, wallSeconds float64) float64 {
	if wallSeconds <= 0 || curCPUSeconds <= prevCPUSeconds {
		return 0
	}
	return (curCPUSeconds - prevCPUSeconds) / wallSeconds * 100
}
