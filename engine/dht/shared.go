package dht

import (
	"errors"
	"net/netip"
)

// PacketConn is what a node needs of a socket it shares with another
// protocol: the engine's uTP socket hands the node the datagrams that are
// not uTP (a bencoded message starts with 'd') and sends the node's
// through the same port, as libtorrent does. utp.OtherConn is one.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

// NewOn starts a node on conn, a socket shared with another protocol whose
// local address is local (cfg.Listen is ignored). The node owns conn's
// reading from now on; Close closes conn (for a shared socket, that stops
// the node's share only, as the socket's owner decides).
func NewOn(cfg Config, conn PacketConn, local netip.AddrPort) (*Node, error) {
	if conn == nil {
		return nil, errors.New("dht: nil packet conn")
	}
	st, err := loadState(cfg.StatePath)
	if err != nil {
		logf(cfg.Logf, "dht: ignoring saved state: %v", err)
		st = nil
	}
	n := newNode(cfg, conn, local, st)
	n.wg.Add(2)
	go n.readLoop()
	go n.maintainLoop()
	return n, nil
}
