package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

// Prefetch keeps the model warm across an offload: while the image generates, the model file
// of the offloaded configuration is read back into the page cache (posix_fadvise WILLNEED and
// a read of each 64 MiB chunk, at idle I/O priority), so that a diffusion model that pushed it out does not turn
// the reload into a cold load. It is only done when the host's available memory holds the
// file with room to spare (prefetchSpare): read-ahead into memory the image needs would evict
// the image's own pages instead.

const (
	prefetchChunk = 64 << 20
	// prefetchSpare is what must stay available beyond the file (and a tenth of it).
	prefetchSpare = 512 << 20
	// ioprio_set(2): IOPRIO_WHO_PROCESS with who 0 is the calling thread; the idle class.
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
)

// Prefetch implements LLMService.
func (s *Service) Prefetch(ctx context.Context, _ *llmv1.PrefetchRequest) (*llmv1.PrefetchResponse, error) {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	skip := func(format string, a ...any) (*llmv1.PrefetchResponse, error) {
		return &llmv1.PrefetchResponse{SkippedReason: fmt.Sprintf(format, a...)}, nil
	}
	if cur == nil {
		return skip("no model was started yet")
	}
	st, err := os.Stat(cur.modelPath)
	if err != nil {
		return skip("model file: %v", err)
	}
	size := st.Size()
	avail := s.opts.HostFacts().MemAvailable
	need := uint64(size) + uint64(size)/10 + prefetchSpare
	switch {
	case avail == 0:
		return skip("the host's available memory is unknown")
	case avail < need:
		return skip("%d bytes available, %d needed to hold the %d-byte model file with room to spare", avail, need, size)
	}
	if !s.prefetchMu.TryLock() {
		return skip("a prefetch is in progress")
	}
	defer s.prefetchMu.Unlock()
	begin := time.Now()
	if err := readAhead(ctx, cur.modelPath, size); err != nil {
		return nil, toStatus(fmt.Errorf("prefetch %s: %w", cur.modelPath, err))
	}
	d := time.Since(begin)
	s.log.Info("model file read into the page cache", "model", cur.cfg.GetModelId(), "bytes", size, "ms", d.Milliseconds())
	return &llmv1.PrefetchResponse{Prefetched: true, Bytes: size, DurationMs: d.Milliseconds()}, nil
}

// readAhead asks the kernel to read path into the page cache, chunk by chunk, from a thread at
// idle I/O priority; it stops early when ctx ends.
func readAhead(ctx context.Context, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if errno == 0 {
		if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, ioprioClassIdle<<ioprioClassShift); errno == 0 {
			defer unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, prev)
		}
	}
	// WILLNEED only starts the read-ahead (and the kernel may trim it): each chunk is then
	// read through a small buffer, which waits for its pages, so the file is cached when
	// Prefetch returns.
	fd := int(f.Fd())
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += prefetchChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(prefetchChunk, size-off)
		if err := unix.Fadvise(fd, off, n, unix.FADV_WILLNEED); err != nil {
			return fmt.Errorf("posix_fadvise: %w", err)
		}
		for p := off; p < off+n; p += int64(len(buf)) {
			if _, err := f.ReadAt(buf[:min(int64(len(buf)), off+n-p)], p); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read: %w", err)
			}
		}
	}
	return nil
}
