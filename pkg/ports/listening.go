package ports

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procNetFiles are the kernel's tables of TCP sockets of this network namespace.
var procNetFiles = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// Listening reports whether any TCP socket of this network namespace listens on port, on any
// address, from the kernel's socket tables (Linux /proc/net/tcp and tcp6).
func Listening(port int) (bool, error) {
	read := 0
	for _, name := range procNetFiles {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return false, fmt.Errorf("read socket table: %w", err)
		}
		found, err := listensIn(bufio.NewScanner(f), port)
		f.Close()
		if err != nil {
			return false, fmt.Errorf("read %s: %w", name, err)
		}
		if found {
			return true, nil
		}
		read++
	}
	if read == 0 {
		return false, errors.New("no socket table in /proc/net")
	}
	return false, nil
}

// tcpListen is the st column of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// listensIn scans one table: lines "sl local_address rem_address st ...", local_address
// "HEXADDR:HEXPORT".
func listensIn(sc *bufio.Scanner, port int) (bool, error) {
	first := true
	for sc.Scan() {
		if first {
			first = false // header
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != tcpListen {
			continue
		}
		i := strings.LastIndexByte(fields[1], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(fields[1][i+1:], 16, 16)
		if err != nil {
			continue
		}
		if int(p) == port {
			return true, nil
		}
	}
	return false, sc.Err()
}
