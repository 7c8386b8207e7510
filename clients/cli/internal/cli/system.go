package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
)

func (a *App) systemCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "The host's hardware"}
	cmd.AddCommand(callCmd(a, "info", "CPU, RAM, disk, GPUs with VRAM, driver, recommended threads", noArgs, genailab.ServiceMonitor,
		func(ctx context.Context, c *genailab.Client, _ []string) (*monitorv1.GetSystemInfoResponse, error) {
			return c.Monitor().GetSystemInfo(ctx, &monitorv1.GetSystemInfoRequest{})
		}, a.printSystemInfo))
	return cmd
}

func (a *App) printSystemInfo(info *monitorv1.GetSystemInfoResponse) error {
	cpu, mem, disk := info.GetCpu(), info.GetMemory(), info.GetDisk()
	pairs := []string{
		"Host", termui.SanitizeLine(info.GetHostname()),
		"OS", termui.SanitizeLine(info.GetOs()),
		"CPU", fmt.Sprintf("%s, %d cores, %d threads", termui.SanitizeLine(cpu.GetModel()), cpu.GetPhysicalCores(), cpu.GetLogicalCores()),
		"Recommended threads", fmt.Sprint(cpu.GetRecommendedThreads()),
		"RAM", fmt.Sprintf("%s used of %s, %s available", termui.Bytes(mem.GetUsedBytes()), termui.Bytes(mem.GetTotalBytes()), termui.Bytes(mem.GetAvailableBytes())),
		"Swap", fmt.Sprintf("%s used of %s", termui.Bytes(mem.GetSwapUsedBytes()), termui.Bytes(mem.GetSwapTotalBytes())),
		"Disk", fmt.Sprintf("%s free of %s (%s)", termui.Bytes(disk.GetFreeBytes()), termui.Bytes(disk.GetTotalBytes()), termui.SanitizeLine(disk.GetPath())),
	}
	if len(info.GetGpus()) == 0 {
		reason := info.GetGpuUnavailableReason()
		if reason == "" {
			reason = "no NVIDIA GPU found"
		}
		pairs = append(pairs, "GPUs", "none ("+termui.SanitizeLine(reason)+")")
	}
	for _, g := range info.GetGpus() {
		pairs = append(pairs, fmt.Sprintf("GPU %d", g.GetIndex()), fmt.Sprintf("%s, VRAM %s used of %s (%s free), %d%% busy, %d°C",
			termui.SanitizeLine(g.GetName()), termui.Bytes(g.GetMemoryUsedBytes()), termui.Bytes(g.GetMemoryTotalBytes()),
			termui.Bytes(g.GetMemoryFreeBytes()), g.GetUtilizationPercent(), g.GetTemperatureCelsius()))
	}
	if v := info.GetDriverVersion(); v != "" {
		d := "NVIDIA " + termui.SanitizeLine(v)
		if cv := info.GetCudaVersion(); cv != "" {
			d += ", CUDA " + termui.SanitizeLine(cv)
		}
		pairs = append(pairs, "Driver", d)
	}
	return a.kv(pairs...)
}

// joinNonEmpty joins the non-empty parts.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
