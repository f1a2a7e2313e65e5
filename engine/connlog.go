package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

// Connection log lines (Config.Logf, `-v`): each connection tried, made,
// named and ended, and why it failed or ended, so that a peer we cannot
// talk to (one that requires encryption hangs up on a plain handshake)
// leaves a trace. One line per event, all "torrent: address: ...".

// encryption names what c is wrapped in.
func (c *conn) encryption() string {
	if c.encrypted {
		return "rc4"
	}
	return "plain"
}

func (t *Torrent) logDial(addr netip.AddrPort, known wireMethod, knownUTP bool) {
	join := func(n int, name func(int) string) string {
		s := name(0)
		for i := 1; i < n; i++ {
			s += ", then " + name(i)
		}
		return s
	}
	ks := t.client.transportPlan(knownUTP)
	ms := dialPlan(t.client.cfg.Encryption, known)
	t.client.logf("%s: %s: connecting (%s; %s)", t.name(), addr,
		join(len(ks), func(i int) string { return ks[i].String() }),
		join(len(ms), func(i int) string { return ms[i].String() }))
}

func (t *Torrent) logDialFailed(addr netip.AddrPort, err error) {
	t.client.logf("%s: %s: connect failed: %v", t.name(), addr, err)
}

// logConnected is the line for a connection handed to the torrent.
func (t *Torrent) logConnected(c *conn) {
	dir := "outgoing"
	if c.incoming {
		dir = "incoming"
	}
	t.client.logf("%s: %s: connected (%s, %s, %s, peer id %s)", t.name(), c.addr, dir, transportOf(c.nc), c.encryption(), peerIDClient(c.peerID))
}

// logClient is the line for a peer's first extended handshake: the client
// it says it is ("v") and the request queue it serves.
func (t *Torrent) logClient(c *conn, h *peer.ExtendedHandshake) {
	name := h.V
	if name == "" {
		name = "?"
	}
	t.client.logf("%s: %s: client %q, reqq %d, listen port %d", t.name(), c.addr, name, h.Reqq, h.Port)
}

// logClosed is the line for a connection that ended, with its cause.
func (t *Torrent) logClosed(c *conn) {
	c.out.mu.Lock()
	err := c.out.closeErr
	c.out.mu.Unlock()
	why := "closed"
	if err != nil {
		why = err.Error()
	}
	t.client.logf("%s: %s: ended after %v (down %s, up %s): %s", t.name(), c.addr,
		time.Since(c.started).Round(100*time.Millisecond), sizeString(c.downloaded.Load()), sizeString(c.uploaded.Load()), why)
}

// peerIDClient is the client part of a peer id, printable: "-TR3000-"
// (Azureus style), "A2-1-36-0-" (aria2), or as much of the start as is
// printable.
func peerIDClient(pid [20]byte) string {
	n := 0
	for n < len(pid) && pid[n] >= 0x20 && pid[n] < 0x7f {
		n++
	}
	switch {
	case pid[0] == '-' && n >= 8:
		n = 8
	case n > 12:
		n = 12
	case n == 0:
		return fmt.Sprintf("%x", pid[:4])
	}
	return fmt.Sprintf("%q", pid[:n])
}

// sizeString formats a byte count for a log line.
func sizeString(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
