package server

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/services/monitor/internal/gpu"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

// usageProto converts a snapshot to the API's Usage.
func usageProto(s telemetry.Snapshot) *monitorv1.Usage {
	u := &monitorv1.Usage{
		Time:       timestamppb.New(s.Time),
		CpuPercent: s.CPU.Percent,
		Memory:     memoryProto(s.Memory, s.Swap),
		Gpus:       gpusProto(s.GPUs),
	}
	for _, p := range s.Managed {
		u.ManagedProcesses = append(u.ManagedProcesses, &monitorv1.ManagedProcess{
			Pid:            p.PID,
			Name:           p.Name,
			Role:           p.Role,
			RssBytes:       p.RSS,
			CpuPercent:     p.CPUPercent,
			GpuMemoryBytes: p.GPUMemory,
		})
	}
	return u
}

func memoryProto(m telemetry.Memory, s telemetry.Swap) *monitorv1.MemoryInfo {
	return &monitorv1.MemoryInfo{
		TotalBytes:     m.Total,
		AvailableBytes: m.Available,
		UsedBytes:      m.Used,
		SwapTotalBytes: s.Total,
		SwapUsedBytes:  s.Used,
	}
}

func gpusProto(devices []gpu.Device) []*monitorv1.GPUInfo {
	out := make([]*monitorv1.GPUInfo, 0, len(devices))
	for _, d := range devices {
		g := &monitorv1.GPUInfo{
			Index:                    int32(d.Index),
			Uuid:                     d.UUID,
			Name:                     d.Name,
			MemoryTotalBytes:         d.MemoryTotal,
			MemoryUsedBytes:          d.MemoryUsed,
			MemoryFreeBytes:          d.MemoryFree,
			UtilizationPercent:       d.UtilizationGPU,
			MemoryUtilizationPercent: d.UtilizationMemory,
			TemperatureCelsius:       d.TemperatureC,
			PowerDrawMilliwatts:      d.PowerDrawMilliwatts,
			PowerLimitMilliwatts:     d.PowerLimitMilliwatts,
			ManagedMemoryBytes:       d.ManagedMemory,
			ForeignMemoryBytes:       d.ForeignMemory,
		}
		for _, p := range d.Processes {
			g.Processes = append(g.Processes, &monitorv1.GPUProcess{
				Pid:             int32(p.PID),
				Name:            p.Name,
				UsedMemoryBytes: p.UsedMemory,
				Managed:         p.Managed,
			})
		}
		out = append(out, g)
	}
	return out
}

// systemInfoProto converts system information to the API's response.
func systemInfoProto(i telemetry.SystemInfo) *monitorv1.GetSystemInfoResponse {
	return &monitorv1.GetSystemInfoResponse{
		Hostname: i.Hostname,
		Os:       i.OS,
		Cpu: &monitorv1.CPUInfo{
			Model:              i.CPUModel,
			PhysicalCores:      int32(i.PhysicalCores),
			LogicalCores:       int32(i.LogicalCores),
			RecommendedThreads: int32(i.RecommendedThreads),
		},
		Memory:               memoryProto(i.Memory, i.Swap),
		Disk:                 &monitorv1.DiskInfo{Path: i.Disk.Path, TotalBytes: i.Disk.Total, FreeBytes: i.Disk.Free},
		Gpus:                 gpusProto(i.GPUs),
		GpuUnavailableReason: i.GPUUnavailable,
		DriverVersion:        i.DriverVersion,
		CudaVersion:          i.CUDAVersion,
	}
}
