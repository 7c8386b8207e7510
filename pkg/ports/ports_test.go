package ports

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFreeAndCheckFree(t *testing.T) {
	p, err := Free("")
	if err != nil {
		t.Fatal(err)
	}
	if p <= 0 || p > 65535 {
		t.Fatalf("Free = %d", p)
	}
	if err := CheckFree("", p); err != nil {
		t.Fatalf("CheckFree on a free port: %v", err)
	}
	if got, err := Resolve("", 0); err != nil || got == 0 {
		t.Fatalf("Resolve(0) = %d, %v", got, err)
	}
}

func TestCheckFreeBusy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	err = CheckFree("127.0.0.1", port)
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("CheckFree busy: %v, want ErrPortInUse", err)
	}
	if want := "port " + strconv.Itoa(port) + " is already in use"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if _, err := Resolve("", port); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("Resolve busy: %v", err)
	}
}

// A server with SO_REUSEPORT (as sd-server does) must still count as busy.
func TestCheckFreeBusyWithReusePort(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := CheckFree("", port); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("CheckFree on SO_REUSEPORT port bound to 0.0.0.0: %v", err)
	}
}

func TestCheckFreeInvalid(t *testing.T) {
	for _, p := range []int{0, -1, 65536} {
		if err := CheckFree("", p); !errors.Is(err, ErrInvalidPort) {
			t.Errorf("CheckFree(%d) = %v", p, err)
		}
	}
}
