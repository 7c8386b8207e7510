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

func reusePortOnly(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 0)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// The real sd-server (cpp-httplib) sets only SO_REUSEPORT. Every connection it closes first
// leaves a TIME_WAIT socket on its port for a minute; a plain bind is refused meanwhile, but no
// server is there and sd-server itself binds again. Regression: the service refused to restart
// sd-server after a cancel or a crash ("port ... is already in use", gave up).
func TestCheckFreeIgnoresTimeWaitLeftoversOfReusePortServer(t *testing.T) {
	lc := net.ListenConfig{Control: reusePortOnly}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	// The server closes first: its side of the connection enters TIME_WAIT.
	server.Close()
	buf := make([]byte, 1)
	_, _ = client.Read(buf) // EOF once the FIN arrived
	client.Close()
	if err := CheckFree("127.0.0.1", port); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("with the listener still open: %v, want in use", err)
	}
	l.Close()
	// The leftover really blocks a plain bind (otherwise this test proves nothing).
	plainLC := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		_ = c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 0) })
		return serr
	}}
	plain, err := plainLC.Listen(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err == nil {
		plain.Close()
		t.Log("this kernel let a plain bind through the TIME_WAIT socket")
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("plain bind: %v", err)
	}
	if err := CheckFree("127.0.0.1", port); err != nil {
		t.Fatalf("after the server closed, only TIME_WAIT is left: %v", err)
	}
	if on, err := Listening(port); err != nil || on {
		t.Fatalf("Listening = %v, %v", on, err)
	}
	// And sd-server's own bind (SO_REUSEPORT) succeeds.
	again, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("rebind with SO_REUSEPORT: %v", err)
	}
	again.Close()
}

func TestListeningSeesAListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if on, err := Listening(l.Addr().(*net.TCPAddr).Port); err != nil || !on {
		t.Fatalf("Listening = %v, %v", on, err)
	}
}
