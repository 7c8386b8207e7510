package telemetry

import (
	"math"
	"testing"

	"github.com/shirou/gopsutil/v4/cpu"
)

func TestBusyPercent(t *testing.T) {
	prev := cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 50}
	cases := []struct {
		name string
		cur  cpu.TimesStat
		want float64
	}{
		{"quarter busy", cpu.TimesStat{User: 120, System: 55, Idle: 870, Iowait: 55}, 25},
		{"iowait is idle", cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 150}, 0},
		{"all busy", cpu.TimesStat{User: 150, System: 100, Idle: 800, Iowait: 50}, 100},
		{"no time passed", prev, 0},
		{"counter went back", cpu.TimesStat{User: 10, Idle: 10}, 0},
		{"steal is busy", cpu.TimesStat{User: 100, System: 50, Idle: 850, Iowait: 50, Steal: 50}, 50},
	}
	for _, c := range cases {
		if got := BusyPercent(prev, c.cur); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSumTimes(t *testing.T) {
	got := SumTimes([]cpu.TimesStat{{User: 1, Idle: 2}, {User: 3, Idle: 4, Steal: 1}})
	if got.User != 4 || got.Idle != 6 || got.Steal != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestProcessCPUPercent(t *testing.T) {
	if got := ProcessCPUPercent(10, 13, 2); got != 150 {
		t.Fatalf("1.5 cores busy: got %v", got)
	}
	if got := ProcessCPUPercent(10, 10, 2); got != 0 {
		t.Fatalf("idle: got %v", got)
	}
	if got := ProcessCPUPercent(10, 12, 0); got != 0 {
		t.Fatalf("zero wall time: got %v", got)
	}
}
