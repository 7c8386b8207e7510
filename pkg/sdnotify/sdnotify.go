// Package sdnotify tells systemd how a service is doing, by the sd_notify protocol: one
// datagram to the unix socket $NOTIFY_SOCKET names. A unit with Type=notify is "started" only
// once the service sent READY=1, so `systemctl start` (and `enable --now`) returns when the
// service accepts connections, not when its process was exec'd. Outside systemd (no
// NOTIFY_SOCKET) every call does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// Ready reports that the service is up: every listener bound, serving.
func Ready() error { return Notify("READY=1") }

// Stopping reports that the service is shutting down.
func Stopping() error { return Notify("STOPPING=1") }

// Notify sends state ("READY=1", "STATUS=...", several separated by newlines) to systemd.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") { // an abstract socket
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}
