package telemetry

import (
	"log/slog"

	"github.com/NVIDIA/go-nvml/pkg/dl"
	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// nvmlLibraryName is the NVML shared object go-nvml loads by default.
const nvmlLibraryName = "libnvidia-ml.so.1"

// OpenSystemGPUs opens the machine's real NVML (libnvidia-ml.so.1). When the
// library cannot be loaded, the dynamic loader's message is kept in the
// reason, since go-nvml reduces it to ERROR_LIBRARY_NOT_FOUND.
func OpenSystemGPUs(log *slog.Logger) *GPUs {
	return OpenGPUs(nvml.New(), loaderError(), log)
}

// loaderError tries to load NVML and returns the loader's error, or "" when
// the library loads.
func loaderError() string {
	lib := dl.New(nvmlLibraryName, dl.RTLD_LAZY|dl.RTLD_LOCAL)
	if err := lib.Open(); err != nil {
		return err.Error()
	}
	_ = lib.Close()
	return ""
}
