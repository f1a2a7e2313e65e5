package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

var errTooManyFiles = syscall.EMFILE

const dialTimeout = 5 * time.Second

// handshakeTimeout bounds a whole handshake, each side's 68 bytes: one
// deadline for all of its reads and writes, so a peer that trickles its
// bytes in is dropped at the same time as one that sends nothing. A
// variable so that tests can shorten it.
var handshakeTimeout = 10 * time.Second

// ourReserved are the extension bits every client announces: fast (BEP 6)
// and the extension protocol (BEP 10). Client.reserved adds DHT.
func ourReserved() peer.Reserved {
	var r peer.Reserved
	r.SetFast()
	r.SetExtended()
	return r
}

// handleIncoming runs the receiving side of a handshake: read the info-hash,
// find the torrent, answer, read the peer id, hand the connection over.
// The accept loop reserved the handshake's room (beginHandshake).
func (c *Client) handleIncoming(nc net.Conn, ip netip.Addr) {
	defer c.endHandshake(ip)
	addr := remoteAddr(nc)
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	// Check the protocol string before waiting for the rest of the head,
	// so a stray client (or an HTTP request) is dropped at once.
	// The length byte alone tells most strangers apart.
	var pstr [1 + len(peer.Protocol)]byte
	if _, err := io.ReadFull(nc, pstr[:1]); err != nil || pstr[0] != byte(len(peer.Protocol)) {
		nc.Close()
		return
	}
	if _, err := io.ReadFull(nc, pstr[1:]); err != nil || string(pstr[1:]) != peer.Protocol {
		nc.Close()
		return
	}
	rsv, ih, err := peer.ReadHandshakeHead(io.MultiReader(bytes.NewReader(pstr[:]), nc))
	if err != nil {
		nc.Close()
		return
	}
	t, ok := c.Torrent(ih)
	if !ok || t.isBanned(addr.Addr()) {
		nc.Close()
		return
	}
	if err := peer.WriteHandshake(nc, peer.Handshake{Reserved: c.reserved(), InfoHash: ih, PeerID: c.peerID}); err != nil {
		nc.Close()
		return
	}
	pid, err := peer.ReadPeerID(nc)
	if err != nil || pid == c.peerID {
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	t.handOver(nc, addr, pid, rsv, true)
}

// dial connects to a peer and runs the initiating side of the handshake.
func (t *Torrent) dial(ctx context.Context, addr netip.AddrPort) (net.Conn, [20]byte, peer.Reserved, error) {
	c := t.client
	select {
	case c.halfOpen <- struct{}{}:
	case <-ctx.Done():
		return nil, [20]byte{}, peer.Reserved{}, ctx.Err()
	}
	d := net.Dialer{Timeout: dialTimeout}
	if ip := c.Addr().Addr(); !ip.IsUnspecified() {
		// Connect from the address we listen on, so peers (and PEX) see
		// the address that accepts connections.
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	<-c.halfOpen
	if err != nil {
		return nil, [20]byte{}, peer.Reserved{}, err
	}
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	err = peer.WriteHandshake(nc, peer.Handshake{Reserved: c.reserved(), InfoHash: t.infoHash, PeerID: c.peerID})
	if err != nil {
		nc.Close()
		return nil, [20]byte{}, peer.Reserved{}, err
	}
	h, err := peer.ReadHandshake(nc)
	if err != nil {
		nc.Close()
		return nil, [20]byte{}, peer.Reserved{}, err
	}
	if h.InfoHash != t.infoHash {
		nc.Close()
		return nil, [20]byte{}, peer.Reserved{}, fmt.Errorf("peer answered for info-hash %x", h.InfoHash)
	}
	if h.PeerID == c.peerID {
		nc.Close()
		return nil, [20]byte{}, peer.Reserved{}, errSelf
	}
	nc.SetDeadline(time.Time{})
	return nc, h.PeerID, h.Reserved, nil
}

var errSelf = errors.New("connected to ourselves")

func remoteAddr(nc net.Conn) netip.AddrPort {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
