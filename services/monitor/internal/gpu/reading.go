package gpu

import "github.com/NVIDIA/go-nvml/pkg/nvml"

// Field is one NVML query result: the value and the return code NVML gave.
// Value is meaningful only when Ret is nvml.SUCCESS.
type Field[T any] struct {
	Value T
	Ret   nvml.Return
}

// OK reports whether NVML answered the query successfully.
func (f Field[T]) OK() bool { return f.Ret == nvml.SUCCESS }

// Of wraps an NVML (value, return) pair as a Field.
func Of[T any](v T, ret nvml.Return) Field[T] { return Field[T]{Value: v, Ret: ret} }

// Reading is everything read from one GPU in one sampling pass, exactly as
// NVML returned it (units: bytes, percent, degrees Celsius, milliwatts).
type Reading struct {
	Index int
	UUID  string
	Name  string

	Memory      Field[nvml.Memory]
	Utilization Field[nvml.Utilization]
	Temperature Field[uint32] // °C
	PowerUsage  Field[uint32] // mW
	PowerLimit  Field[uint32] // mW, enforced limit

	ComputeProcesses  Field[[]nvml.ProcessInfo]
	GraphicsProcesses Field[[]nvml.ProcessInfo]
}
