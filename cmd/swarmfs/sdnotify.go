package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// sdNotify sends state ("READY=1", "STOPPING=1", "STATUS=...") to the
// service manager over $NOTIFY_SOCKET, the datagram socket systemd gives a
// Type=notify service; it does nothing when the variable is unset. It is
// the whole of sd_notify(3) that swarmfs needs: one datagram per call, no
// file descriptors, no library. A leading '@' names an abstract socket,
// which Go's unix addresses understand as is.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return fmt.Errorf("NOTIFY_SOCKET %q: only unix sockets are supported", addr)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}
