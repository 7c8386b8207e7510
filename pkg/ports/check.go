package ports

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ErrPortInUse reports that the requested port is held by another socket.
var ErrPortInUse = errors.New("port is already in use")

// ErrInvalidPort reports a port number outside 1-65535.
var ErrInvalidPort = errors.New("invalid port")

// CheckFree reports whether a TCP listener could bind host:port ("" host
// means DefaultHost). It binds without SO_REUSEPORT, so a port held by a
// SO_REUSEPORT server is reported as in use too; a bind refused only because
// of leftover connections (TIME_WAIT) with no listening socket on the port is
// free (see Listening). The error for a busy port
// wraps ErrPortInUse and reads "port 8080 is already in use".
func CheckFree(host string, port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("%w: %d (want 1-65535)", ErrInvalidPort, port)
	}
	l, err := net.Listen("tcp", addr(host, port))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// A port can refuse the bind without any server on it: the TIME_WAIT sockets that a
			// server with only SO_REUSEPORT (sd-server) leaves behind for a minute after closing
			// connections or dying. The engine itself binds over them, so only a listener counts.
			if listening, lerr := Listening(port); lerr == nil && !listening {
				return nil
			}
			return &InUseError{Port: port}
		}
		return fmt.Errorf("check port %d: %w", port, err)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("check port %d: %w", port, err)
	}
	return nil
}

// InUseError is the error CheckFree returns for a busy port.
type InUseError struct{ Port int }

func (e *InUseError) Error() string { return fmt.Sprintf("port %d is already in use", e.Port) }

// Is makes errors.Is(err, ErrPortInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrPortInUse }
