package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/picker"
)

// What a peer says: each message, on the loop. Only harm disconnects (see
// the package doc); what real clients send that BEP 3 and BEP 6 do not
// quite allow is taken the way libtorrent, transmission and aria2 take it.

// errProtocol marks a peer's violation of the wire protocol.
var errProtocol = errors.New("protocol violation")

// violation disconnects a peer that broke the protocol.
func (t *Torrent) violation(c *conn, format string, args ...any) {
	err := fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
	if len(args) == 1 && format == "%v" {
		if e, ok := args[0].(error); ok && errors.Is(e, peer.ErrProtocol) {
			err = e // it says so already
		}
	}
	c.close(err) // removeConn logs it
	t.removeConn(c)
}

func (t *Torrent) onMessage(c *conn, m *peer.Message) {
	if c.removed {
		if m.Type == peer.Piece {
			putBlockBuf(m.Block)
		}
		return
	}
	if t.picker == nil {
		t.onMessageNoInfo(c, m)
		return
	}
	n := t.info.NumPieces()
	now := time.Now()
	switch m.Type {
	case peer.Choke:
		c.choke.peerChoking = true
		t.picker.PeerChoked(c.id, true)
	case peer.Unchoke:
		c.choke.peerChoking = false
		t.picker.PeerChoked(c.id, false)
		t.fill(c, now)
	case peer.Interested:
		c.choke.peerInterested = true
		t.unchokeIfFree(c, now)
	case peer.NotInterested:
		c.choke.peerInterested = false
	case peer.Have:
		if int(m.Index) >= n {
			t.violation(c, "have %d of %d pieces", m.Index, n)
			return
		}
		t.picker.PeerHave(c.id, int(m.Index))
		t.notePeerHas(c, int(m.Index))
		t.superPeerHas(c, int(m.Index), now)
		t.updateInterest(c)
		t.fill(c, now)
	case peer.Bitfield:
		// BEP 3 wants it first, but aria2 sends one mid-connection (after
		// a run of HAVEs) and libtorrent, transmission and aria2 take any
		// later one as the peer's new set: so do we.
		if err := peer.CheckBitfield(m.Bitfield, n); err != nil {
			t.violation(c, "%v", err)
			return
		}
		t.setPeerPieces(c, m.Bitfield, false)
		t.superPeerHas(c, -1, now)
		t.fill(c, now)
	case peer.HaveAll, peer.HaveNone:
		// Also a new set at any time, and unambiguous without the fast
		// extension too (libtorrent, transmission and aria2 disconnect;
		// nothing is harmed by believing it).
		t.setPeerPieces(c, nil, m.Type == peer.HaveAll)
		t.superPeerHas(c, -1, now)
		t.fill(c, now)
	case peer.Request:
		t.onRequest(c, m)
	case peer.Cancel:
		c.cancelUpload(m.Index, m.Begin, m.Length)
	case peer.Piece:
		t.onPiece(c, m, now)
	case peer.Reject:
		// Taken at its word with or without the fast extension; one for a
		// request we no longer have (cancelled, timed out) changes nothing.
		t.picker.RequestRejected(c.id, picker.Request{Piece: int(m.Index), Begin: m.Begin, Length: m.Length})
		t.fill(c, now)
	case peer.AllowedFast:
		if int(m.Index) < n {
			t.picker.PeerAllowedFast(c.id, int(m.Index))
			t.fill(c, now)
		}
	case peer.Suggest:
		// A hint we do not act on.
	case peer.Port:
		t.onPort(c, m.Port)
	case peer.Extended:
		t.onExtended(c, m)
	case peer.HashRequest:
		t.onHashRequest(c, m)
	case peer.Hashes:
		t.onHashes(c, m, now)
	case peer.HashReject:
		t.onHashReject(c, m, now)
	}
	if !c.removed && t.isComplete && t.peerIsSeed(c) {
		c.close(errBothSeeding)
		t.removeConn(c)
	}
}

func (t *Torrent) onMessageNoInfo(c *conn, m *peer.Message) {
	switch m.Type {
	case peer.Choke:
		c.choke.peerChoking = true
	case peer.Unchoke:
		c.choke.peerChoking = false
	case peer.Interested:
		c.choke.peerInterested = true
	case peer.NotInterested:
		c.choke.peerInterested = false
	case peer.Have:
		if !t.notePreInfoHave(c, int(m.Index)) {
			t.violation(c, "have %d: more pieces than any info we would accept", m.Index)
		}
	case peer.Bitfield:
		c.has.bits = m.Bitfield // bounded by the decoder; checked once the info is known
		c.has.preAll, c.has.pre = false, nil
	case peer.HaveAll, peer.HaveNone:
		c.has.bits, c.has.pre = nil, nil
		c.has.preAll = m.Type == peer.HaveAll
	case peer.Request:
		t.refuseRequest(c, m, true) // we choke every peer until we have the info
	case peer.Piece:
		putBlockBuf(m.Block) // we asked for nothing
	case peer.Port:
		t.onPort(c, m.Port)
	case peer.Extended:
		t.onExtended(c, m)
	}
}

func (t *Torrent) onPort(c *conn, port uint16) {
	d := t.client.dht
	if d == nil || c.gotPort || port == 0 {
		return
	}
	c.gotPort = true
	d.AddNode(netip.AddrPortFrom(c.addr.Addr(), port))
}

func (t *Torrent) onExtended(c *conn, m *peer.Message) {
	if !c.ext {
		return
	}
	switch m.ExtendedID {
	case peer.ExtHandshakeID:
		t.onExtHandshake(c, m.Payload)
	case extMetadataID:
		t.onMetadataMessage(c, m.Payload)
	case extPexID:
		t.onPex(c, m.Payload)
	default:
		// Extensions we did not announce.
	}
}

func (t *Torrent) onExtHandshake(c *conn, payload []byte) {
	h, err := peer.ParseExtendedHandshake(payload)
	if err != nil {
		// Ignored, as libtorrent and transmission do: we only miss what
		// it would have told us.
		t.client.logf("%s: %s: ignored an extension handshake: %v", t.name(), c.addr, err)
		return
	}
	if c.exts.hs == nil {
		t.logClient(c, h)
	}
	if c.exts.ids == nil {
		c.exts.ids = make(map[string]int, len(h.M))
	}
	for name, id := range h.M {
		_, known := c.exts.ids[name]
		switch {
		case id == 0:
			delete(c.exts.ids, name)
		case known || len(c.exts.ids) < peer.MaxExtensions:
			c.exts.ids[name] = id
		}
	}
	if c.exts.hs != nil {
		// Keep what an earlier handshake said and this one left out.
		if h.Port == 0 {
			h.Port = c.exts.hs.Port
		}
		if h.MetadataSize == 0 {
			h.MetadataSize = c.exts.hs.MetadataSize
		}
		if h.IPv6 == "" {
			h.IPv6 = c.exts.hs.IPv6
		}
	}
	c.exts.hs = h
	if h.Reqq > 0 {
		c.flow.peerReqq = min(h.Reqq, ourReqq)
	}
	if c.incoming && h.Port > 0 && c.cand == nil {
		// Its listening address: the candidate we would dial is this peer.
		if cand := t.candidates[netip.AddrPortFrom(c.addr.Addr(), uint16(h.Port))]; cand != nil && !cand.connected {
			c.cand = cand
			cand.connected = true
		}
	}
	if c.exts.ids[peer.ExtPex] > 0 && c.pex.next.IsZero() {
		c.pex.next = time.Now().Add(pexFirstDelay)
	}
	t.metaPeerSeen(c)
	t.dropRedundant(c)
}

func (t *Torrent) setPeerPieces(c *conn, bits peer.Bits, all bool) {
	n := t.info.NumPieces()
	switch {
	case all:
		t.picker.PeerHaveAll(c.id)
		c.has.bits, c.has.count = nil, n
	default:
		t.picker.PeerBitfield(c.id, bits)            // nil: none
		c.has.bits, c.has.count = bits, bits.Count() // checked: no spare bits
	}
	t.updateInterest(c)
}

func (t *Torrent) notePeerHas(c *conn, i int) {
	if c.has.count >= t.info.NumPieces() {
		return // a seed: c.has.bits may be nil
	}
	if c.has.bits == nil {
		c.has.bits = peer.NewBits(t.info.NumPieces())
	}
	if c.has.bits.Set(i) {
		c.has.count++
	}
}

func (t *Torrent) peerIsSeed(c *conn) bool {
	return t.picker != nil && c.has.count >= t.info.NumPieces()
}
