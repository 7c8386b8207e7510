package ports

import (
	"fmt"
	"net"
	"strconv"
)

// DefaultHost is the host used when none is given: engines bind to loopback
// unless told otherwise.
const DefaultHost = "127.0.0.1"

// Free returns a TCP port that is free on host ("" means DefaultHost) at the
// time of the call, chosen by the kernel. Another process may still take it
// before the engine binds; an engine that then fails to bind exits, which the
// supervisor reports.
func Free(host string) (int, error) {
	if host == "" {
		host = DefaultHost
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Resolve returns port itself after checking it is free on host, or a free
// port when port is 0.
func Resolve(host string, port int) (int, error) {
	if port == 0 {
		return Free(host)
	}
	if err := CheckFree(host, port); err != nil {
		return 0, err
	}
	return port, nil
}

func addr(host string, port int) string {
	if host == "" {
		host = DefaultHost
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
