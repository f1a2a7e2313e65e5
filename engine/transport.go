package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/utp"
)

// transportKind is what carries a connection: TCP or uTP (BEP 29).
type transportKind uint8

const (
	overTCP transportKind = iota
	overUTP
)

func (k transportKind) String() string {
	if k == overUTP {
		return "utp"
	}
	return "tcp"
}

// transportOf names what carries nc (an MSE connection: what it wraps).
func transportOf(nc net.Conn) transportKind {
	if mc, ok := nc.(*mse.Conn); ok {
		nc = mc.NetConn()
	}
	if _, ok := nc.(*utp.Conn); ok {
		return overUTP
	}
	return overTCP
}

// listenUTP binds the uTP socket on the UDP port with the TCP listener's
// number and host, as libtorrent does: peers that learn our port from a
// tracker, the DHT or PEX try both transports on it. The DHT shares the
// socket. A port taken on UDP costs uTP only (logged), unless TCP is off.
func (c *Client) listenUTP() error {
	host := ""
	if c.cfg.ListenAddr != "" {
		if h, _, err := net.SplitHostPort(c.cfg.ListenAddr); err == nil {
			host = h
		}
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(c.port)))
	s, err := utp.Listen("udp", addr, utp.Config{Logf: c.logf})
	if err != nil {
		if c.cfg.NoTCP {
			return fmt.Errorf("engine: uTP: %w", err)
		}
		c.logf("uTP off: %v", err)
		return nil
	}
	c.utp = s
	c.wg.Add(1)
	go c.acceptUTPLoop()
	return nil
}

// acceptUTPLoop takes incoming uTP connections through the same handshake
// as TCP ones (MSE included).
func (c *Client) acceptUTPLoop() {
	defer c.wg.Done()
	for {
		nc, err := c.utp.Accept()
		if err != nil {
			if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			c.logf("accept uTP: %v", err)
			continue
		}
		c.serve(nc)
	}
}

// serve runs an incoming connection's handshake on its own goroutine,
// within the handshake room (beginHandshake).
func (c *Client) serve(nc net.Conn) {
	addr := remoteAddr(nc).Addr()
	if !c.beginHandshake(addr) {
		nc.Close()
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.handleIncoming(nc, addr)
	}()
}

// transportPlan lists the transports an outgoing connection tries, in
// order: uTP first for a peer known to speak it (PEX flag 0x04, or it
// reached us over uTP), TCP first otherwise (TCP is what every peer
// speaks, and on loopback and fast paths it is cheaper: uTP moves
// 1400-byte packets), each falling back to the other when the connect
// itself fails. Config.NoTCP and NoUTP (or a uTP socket that could not
// bind) leave one.
func (c *Client) transportPlan(knownUTP bool) []transportKind {
	switch {
	case c.utp == nil:
		return []transportKind{overTCP}
	case c.cfg.NoTCP:
		return []transportKind{overUTP}
	case knownUTP:
		return []transportKind{overUTP, overTCP}
	}
	return []transportKind{overTCP, overUTP}
}

// connect opens one connection to addr over k, within the half-open
// bound. A failure is a *dialError: the peer is not there on k.
func (c *Client) connect(ctx context.Context, addr netip.AddrPort, k transportKind) (net.Conn, error) {
	select {
	case c.halfOpen <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.halfOpen }()
	var nc net.Conn
	var err error
	if k == overUTP {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		nc, err = c.utp.DialAddrPort(dctx, addr)
		cancel()
	} else {
		d := net.Dialer{Timeout: dialTimeout}
		if ip := c.Addr().Addr(); !ip.IsUnspecified() && ip.Is4() == addr.Addr().Unmap().Is4() {
			// Connect from the address we listen on, so peers (and PEX)
			// see the address that accepts connections. A peer of the
			// other family is dialled from any address of its own.
			d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
		}
		nc, err = d.DialContext(ctx, "tcp", addr.String())
	}
	if err != nil {
		return nil, &dialError{err}
	}
	return nc, nil
}

// markUTP notes candidates that PEX says speak uTP, so that they are
// dialled over it first.
func (t *Torrent) markUTP(addrs []netip.AddrPort) {
	for _, a := range addrs {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if c, ok := t.candidates[a]; ok {
			c.utp = true
		}
	}
}

// noteIncomingUTP: an incoming uTP connection comes from the peer's one
// UDP socket, which is its listening port (libtorrent, libutp and this
// package each send every connection from it), so the candidate at that
// address is this peer and it speaks uTP: a reconnect, after the
// connection ends, dials it over uTP first. (An incoming TCP connection's
// port is ephemeral: its candidate is found by the extension handshake's
// listen port, if at all.)
func (t *Torrent) noteIncomingUTP(c *conn) {
	if !c.incoming || transportOf(c.nc) != overUTP {
		return
	}
	if c.cand != nil { // inherited from a duplicate: the same peer
		c.cand.utp = true
		return
	}
	a := c.addr
	if a.Port() == 0 {
		return
	}
	cand := t.candidates[a]
	if cand == nil {
		if len(t.candidates) >= maxCandidates {
			t.dropWorstCandidate()
		}
		now := time.Now()
		cand = &candidate{addr: a, added: now, lastSeen: now, lastConnected: now}
		t.candidates[a] = cand
	}
	cand.utp = true
	if !cand.connected && !cand.dialing {
		c.cand, cand.connected = cand, true
	}
}
