// Package proctest starts engine stand-in processes for tests: the test
// binary itself, re-executed under an engine's executable name
// (llama-server, sd-server, ...) through a symlink, so that the kernel and
// gopsutil report that name. A test package using it calls MaybeHelper
// first thing in its TestMain.
package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a helper process instead of
// running tests.
const helperEnv = "GENAILAB_MONITOR_PROCTEST_HELPER"

// Modes a helper runs in.
const (
	Spin  = "spin"  // burn one core
	Sleep = "sleep" // idle
)

// lifetime bounds a helper's life should its test fail to kill it.
const lifetime = time.Minute

// MaybeHelper runs the helper and exits if this process was started as
// one; otherwise it returns at once.
func MaybeHelper() {
	switch os.Getenv(helperEnv) {
	case Spin:
		deadline := time.Now().Add(lifetime)
		for time.Now().Before(deadline) {
		}
		os.Exit(0)
	case Sleep:
		time.Sleep(lifetime)
		os.Exit(0)
	}
}

// Start runs the test binary as a helper named name in mode, killed at
// test cleanup (and by the kernel if the test process dies).
func Start(t testing.TB, name, mode string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
