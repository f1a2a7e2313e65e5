package engine

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

// Connections joining and leaving the torrent: adoption of a handshaken
// connection (duplicates, slots, its candidate), what we send first
// (bitfield, extension handshake, DHT port) and removal.

// addConn adopts a handshaken connection.
func (t *Torrent) addConn(nc net.Conn, addr netip.AddrPort, pid [20]byte, rsv peer.Reserved, incoming bool) {
	if t.isBanned(addr.Addr()) {
		t.client.logf("%s: %s: refused after the handshake: banned", t.name(), addr)
		nc.Close()
		return
	}
	if err := t.goalRefuses(); err != nil {
		nc.Close()
		return
	}
	cand := t.candidates[addr]
	var inherit *candidate // the candidate of a duplicate this one replaces
	for o := range t.conns {
		if o.peerID != pid {
			continue
		}
		// Already connected to this peer. When both sides dialled at once,
		// both must keep the same connection: the one opened by the side
		// with the lower peer ID.
		ours := bytes.Compare(t.client.peerID[:], pid[:]) < 0
		if o.incoming == incoming || !o.incoming == ours {
			t.client.logf("%s: %s: refused: already connected to this peer at %s", t.name(), addr, o.addr)
			nc.Close()
			if cand != nil && !incoming {
				if o.cand == nil && o.addr.Addr() == addr.Addr() {
					o.cand, cand.connected = cand, true
				} else {
					cand.nextTry = time.Now().Add(duplicateBackoff)
				}
			}
			return
		}
		inherit, o.cand = o.cand, nil
		o.close(errDuplicate)
		t.removeConn(o)
		break
	}
	if err := t.admit(addr, time.Now()); err != nil {
		t.client.refusedLog.logf(t.client, "%s: %s: refused: %v", t.name(), addr, err)
		nc.Close()
		if cand != nil && !incoming {
			cand.nextTry = later(cand.nextTry, time.Now().Add(peerRetry.after(1)))
		}
		return
	}
	t.nextPeerID++
	c := newConn(t, nc, addr, pid, rsv, incoming, t.nextPeerID)
	t.conns[c] = struct{}{}
	t.byID[c.id] = c
	t.pub.numConns.Store(int32(len(t.conns)))
	if t.picker != nil {
		t.picker.AddPeer(c.id)
	}
	if cand != nil && !incoming {
		c.cand = cand
		cand.connected = true
		cand.failures = 0
		cand.lastConnected = time.Now()
	} else if inherit != nil && t.candidates[inherit.addr] == inherit {
		c.cand = inherit
		inherit.connected = true
	}
	t.noteIncomingUTP(c)
	t.logConnected(c)
	c.start(t.maxMessage())
	t.sendIntro(c)
}

// metaRedialWait is how soon a peer that hung up after taking our info
// dictionary is dialled again (see removeConn).
const metaRedialWait = 500 * time.Millisecond

// duplicateBackoff is how long a candidate that turned out to be a peer we
// are already connected to (under another address) is left alone.
const duplicateBackoff = 10 * time.Minute

// removeConn forgets a closed connection.
func (t *Torrent) removeConn(c *conn) {
	if c.removed {
		return
	}
	c.removed = true
	c.close(nil)
	t.logClosed(c)
	delete(t.conns, c)
	delete(t.byID, c.id)
	t.pub.numConns.Store(int32(len(t.conns)))
	if t.picker != nil {
		t.picker.RemovePeer(c.id)
	} else {
		t.metaConnGone(c)
	}
	if cand := c.cand; cand != nil && t.candidates[cand.addr] == cand {
		now := time.Now()
		cand.connected = false
		cand.lastSeen = now
		switch {
		case c.incoming:
		case c.meta.gave && !cand.metaRedial && now.Sub(c.started) < 30*time.Second:
			// It took our info dictionary and hung up: a magnet client
			// that starts the torrent proper as a download of its own and
			// drops the metadata's connections (aria2, rtorrent,
			// transmission). It wants the data from us next: dial it
			// again at once, not 15 s later. Once per address.
			cand.metaRedial = true
			cand.nextTry = now.Add(metaRedialWait)
		default:
			if now.Sub(c.started) < 30*time.Second {
				cand.failures++ // a peer that drops us at once is worth less
			}
			cand.nextTry = now.Add(cand.retryWait(cand.failures))
		}
	}
	c.dropUploads()
	// The reader and writer goroutines end on their own now that the
	// socket is closed (waiting for them here could deadlock on a post);
	// they are the torrent's, and close waits for them.
	t.fillAll()
}

// maxMessage bounds a message from a peer: room for a block, or for the
// bitfield of the torrent (before the info is known, of the largest torrent
// whose info dictionary we would accept).
func (t *Torrent) maxMessage() int {
	n := t.client.cfg.MaxMetadataSize / 20 // a piece costs 20 bytes of info
	if t.picker != nil {
		n = t.info.NumPieces()
	}
	return max(peer.DefaultMaxMessageLength, (n+7)/8+16)
}

// sendIntro sends what we have, the extension handshake and our DHT port.
func (t *Torrent) sendIntro(c *conn) {
	if t.picker == nil {
		// No info yet: we have nothing. Without the fast extension,
		// saying nothing says that.
		if c.fast {
			c.send(peer.Message{Type: peer.HaveNone})
		}
	} else if t.super.active {
		t.superIntro(c)
	} else {
		n := t.pub.numHave.Load()
		switch {
		case c.fast && n == int64(t.info.NumPieces()):
			c.send(peer.Message{Type: peer.HaveAll})
		case c.fast && n == 0:
			c.send(peer.Message{Type: peer.HaveNone})
		case n > 0:
			c.send(peer.Message{Type: peer.Bitfield, Bitfield: t.bitfield()})
		}
	}
	if c.ext {
		t.sendExtHandshake(c)
	}
	if c.dht {
		c.send(peer.Message{Type: peer.Port, Port: t.client.dht.Addr().Port()})
	}
}

// Our extended message ids: what peers send ut_pex and ut_metadata
// messages to us under (libtorrent uses the same).
const (
	extPexID      = 1
	extMetadataID = 2
)

// sendExtHandshake sends the BEP 10 handshake: the extensions we speak and,
// once known, the size of the info dictionary. It is sent again when a
// magnet's info arrives.
func (t *Torrent) sendExtHandshake(c *conn) {
	m := map[string]int{peer.ExtMetadata: extMetadataID, peer.ExtPex: extPexID}
	if !t.pexAllowed() {
		m[peer.ExtPex] = 0
	}
	h := peer.ExtendedHandshake{
		M:            m,
		V:            "swarmfs " + Version,
		Reqq:         ourReqq,
		Port:         int(t.client.port),
		MetadataSize: len(t.infoBytes),
	}
	if t.uploadOnly.said {
		h.UploadOnly = 1
	}
	if ip := c.addr.Addr(); ip.IsValid() {
		h.YourIP = string(ip.AsSlice())
	}
	if ip := t.client.ipv6; ip.IsValid() {
		// BEP 10: a peer that reached us over IPv4 may tell others (PEX)
		// of this address too.
		h.IPv6 = string(ip.AsSlice())
	}
	if b, err := h.Marshal(); err == nil {
		c.send(peer.Message{Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: b})
	}
}

// bitfield encodes our verified pieces, BEP 3 bit order.
func (t *Torrent) bitfield() []byte {
	n := t.info.NumPieces()
	b := peer.NewBits(n)
	for i := 0; i < n; i++ {
		if t.HavePiece(i) {
			b.Set(i)
		}
	}
	return b
}

var (
	errBanned      = errors.New("banned")
	errDuplicate   = errors.New("duplicate connection")
	errBothSeeding = errors.New("both seeding")
)
