package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// sdNotify sends state (such as "READY=1") to systemd's notification socket
// named by $NOTIFY_SOCKET, as sd_notify(3) does. Without the variable (not
// started by systemd with Type=notify) it does nothing and reports false.
func sdNotify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	name := path
	switch {
	case strings.HasPrefix(path, "@"):
		// An abstract socket: its name starts with a NUL byte.
		name = "\x00" + path[1:]
	case strings.HasPrefix(path, "/"):
	default:
		return false, fmt.Errorf("NOTIFY_SOCKET %q is neither a path nor an abstract socket name", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify systemd at %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("notify systemd at %s: %w", path, err)
	}
	return true, nil
}
