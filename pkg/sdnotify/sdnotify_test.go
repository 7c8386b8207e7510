package sdnotify_test

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/genailab/genailab/pkg/sdnotify"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestReadyAndStoppingReachTheNotifySocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdnotify.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
	if err := sdnotify.Stopping(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "STOPPING=1" {
		t.Errorf("got %q, want STOPPING=1", got)
	}
}

func TestAbstractSocket(t *testing.T) {
	c := listen(t, "\x00genailab-sdnotify-test-"+t.Name())
	t.Setenv("NOTIFY_SOCKET", "@genailab-sdnotify-test-"+t.Name())
	if err := sdnotify.Notify("STATUS=hi"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "STATUS=hi" {
		t.Errorf("got %q", got)
	}
}

func TestWithoutSystemdNothingHappens(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdnotify.Ready(); err != nil {
		t.Fatal(err)
	}
}

func TestAMissingSocketIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := sdnotify.Ready(); err == nil {
		t.Fatal("no error for a socket that does not exist")
	}
}
