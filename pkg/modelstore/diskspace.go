package modelstore

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FreeSpaceFunc reports the bytes available to this process on the file
// system holding dir. Tests inject their own.
type FreeSpaceFunc func(dir string) (uint64, error)

// StatfsFreeSpace reads free space with statfs(2): blocks available to
// unprivileged users times the block size.
func StatfsFreeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// Defaults of the free-space reserve (Options.MinFreeBytes 0).
const (
	// DefaultMinFreePercent of the volume is kept free after a download ...
	DefaultMinFreePercent = 5
	// ... at most DefaultMinFreeMax.
	DefaultMinFreeMax = 1 << 30
	// fallbackMinFree is the reserve when the volume's size cannot be read.
	fallbackMinFree = 256 << 20
)

// StatfsVolumeSize reads the size of the file system holding dir with statfs(2).
func StatfsVolumeSize(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return uint64(st.Blocks) * uint64(st.Bsize), nil
}
