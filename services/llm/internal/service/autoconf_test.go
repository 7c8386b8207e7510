package service

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/modelstore"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPhysicalCores(t *testing.T) {
	for _, tc := range []struct {
		file string
		want int
	}{
		{"cpuinfo_2core_ht.txt", 2}, // 4 logical CPUs, 2 cores
		{"cpuinfo_2socket.txt", 4},  // same core ids on two sockets
		{"cpuinfo_arm.txt", 0},      // no topology: caller falls back to NumCPU
	} {
		if got := physicalCores(readFixture(t, tc.file)); got != tc.want {
			t.Errorf("%s: physicalCores = %d, want %d", tc.file, got, tc.want)
		}
	}
}

func TestMemAvailable(t *testing.T) {
	if got, want := memAvailable(readFixture(t, "meminfo.txt")), uint64(24124428)*1024; got != want {
		t.Errorf("memAvailable = %d, want %d", got, want)
	}
	if got := memAvailable([]byte("MemTotal: 1 kB\n")); got != 0 {
		t.Errorf("memAvailable without the field = %d, want 0", got)
	}
}

func TestGPUPresent(t *testing.T) {
	dev := t.TempDir()
	if gpuPresent(dev) {
		t.Fatal("empty /dev has a GPU")
	}
	if err := os.WriteFile(filepath.Join(dev, "nvidiactl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if gpuPresent(dev) {
		t.Fatal("nvidiactl alone is not a GPU")
	}
	if err := os.WriteFile(filepath.Join(dev, "nvidia0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !gpuPresent(dev) {
		t.Fatal("nvidia0 not seen")
	}
}

// tinyInfo is the metadata of the default ggufgen model: 2 layers, dim 64,
// 4 heads, context 256.
func tinyInfo(ctx uint64) *modelstore.GGUFInfo {
	return &modelstore.GGUFInfo{BlockCount: 2, EmbeddingLength: 64, HeadCount: 4, HeadCountKV: 4, ContextLength: ctx}
}

func TestKVBytesPerToken(t *testing.T) {
	// 2 layers × 4 KV heads × (16 K + 16 V) × 2 bytes (f16) = 512.
	if got := kvBytesPerToken(tinyInfo(256), "", ""); got != 512 {
		t.Errorf("f16 = %v, want 512", got)
	}
	// q8_0 K (34/32 bytes per element), f32 V.
	if got, want := kvBytesPerToken(tinyInfo(256), "q8_0", "f32"), 2*4*(16*34.0/32+16*4); got != want {
		t.Errorf("q8_0/f32 = %v, want %v", got, want)
	}
	// A 7B-like GQA model: 32 layers, 8 KV heads of 128: 128 KiB per token in f16.
	big := &modelstore.GGUFInfo{BlockCount: 32, EmbeddingLength: 4096, HeadCount: 32, HeadCountKV: 8, KeyLength: 128, ValueLength: 128}
	if got := kvBytesPerToken(big, "f16", "f16"); got != 128<<10 {
		t.Errorf("7B f16 = %v, want %d", got, 128<<10)
	}
}

func TestAutoContext(t *testing.T) {
	const gib = 1 << 30
	big := &modelstore.GGUFInfo{BlockCount: 32, EmbeddingLength: 4096, HeadCount: 32, HeadCountKV: 8, ContextLength: 131072}
	for _, tc := range []struct {
		name       string
		info       *modelstore.GGUFInfo
		mem, model uint64
		max        int
		want       int
	}{
		{"tiny model keeps its own context", tinyInfo(256), 16 * gib, 1 << 20, 8192, 256},
		{"long training context is capped", big, 64 * gib, 4 * gib, 8192, 8192},
		// (3 GiB - 2 GiB) / 2 = 512 MiB of KV at 128 KiB per token: 4096.
		{"memory lowers the context", big, 3 * gib, 2 * gib, 32768, 4096},
		{"memory rounding to 256", big, 3*gib + 100<<20, 2 * gib, 32768, 4352},
		{"never below 512 for memory", big, 2 * gib, 2 * gib, 8192, 512},
		{"unknown memory: cap only", big, 0, 0, 16384, 16384},
		{"unreadable metadata", nil, 16 * gib, 0, 8192, fallbackContext},
		{"unreadable metadata, low cap", nil, 16 * gib, 0, 2048, 2048},
	} {
		if got := autoContext(tc.info, "", "", tc.mem, tc.model, tc.max); got != tc.want {
			t.Errorf("%s: autoContext = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestAutoGPULayers(t *testing.T) {
	if p := autoGPULayers(false); p == nil || *p != 0 {
		t.Errorf("no GPU: %v, want 0", p)
	}
	if p := autoGPULayers(true); p != nil {
		t.Errorf("GPU: %v, want nil (llama-server fits layers itself)", *p)
	}
}
