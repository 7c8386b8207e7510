package testenv

import (
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// Self is the running test binary started again as a helper process (the re-exec
// pattern: the binary's TestMain, or a function it calls first, sees the variable and
// runs the helper instead of the tests). In is its stdin, Out its stdout; its stderr is
// this process's.
type Self struct {
	In  io.WriteCloser
	Out io.Reader
	Pid int
}

// StartSelf starts the test binary again with the environment variable env=value added,
// in its own process group and killed if this process dies. At cleanup its stdin is
// closed, which the helper must take as the signal to exit, and it is waited for; a
// helper that fails is reported with tb.Errorf.
func StartSelf(tb testing.TB, env, value string) *Self {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env+"="+value)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		in.Close() // EOF: the helper's signal to exit
		if err := cmd.Wait(); err != nil {
			tb.Errorf("helper process %s: %v", env, err)
		}
	})
	return &Self{In: in, Out: out, Pid: cmd.Process.Pid}
}
