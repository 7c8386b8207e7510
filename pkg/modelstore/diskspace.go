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
