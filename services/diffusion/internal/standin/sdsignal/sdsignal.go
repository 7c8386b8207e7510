// Package sdsignal makes a stand-in die by a signal, the way the real C++ program does when it
// aborts (SIGABRT, exit status 134 in a shell) or crashes (SIGSEGV, 139). It is part of the
// STAND-INS for stable-diffusion.cpp (see package standin), not the real engine.
//
// The Go runtime installs its own handlers for SIGABRT and SIGSEGV and would turn the signal
// into a panic or a stack dump with exit status 2. Die restores the default disposition first,
// then sends the signal to the calling thread, so the process is killed by it and prints
// nothing.
package sdsignal

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// sigaction is the kernel's struct sigaction on linux/amd64 and linux/arm64.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// Die kills the process with sig under the default disposition. It does not return.
func Die(sig syscall.Signal) {
	_ = os.Stdout.Sync()
	act := sigaction{} // SIG_DFL
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	var set uint64 = 1 << (uint(sig) - 1)
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 1 /* SIG_UNBLOCK */, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	_ = syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), sig)
	// The signal is delivered on return from the syscall; should it not be, make sure.
	_ = syscall.Kill(syscall.Getpid(), sig)
	time.Sleep(time.Second)
	os.Exit(128 + int(sig))
}
