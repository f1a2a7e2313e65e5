package engine

import (
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

// Peer exchange (BEP 11): every minute each peer that speaks ut_pex is told
// which of our peers appeared (with flags) and which went away since the
// last message to it; the first message goes out a moment after its
// extension handshake, so a newcomer learns the swarm at once. What peers
// tell us becomes candidates, bounded per message and by maxCandidates.
// Never for private torrents.

const (
	// pexInterval is the least time between two messages to one peer
	// (BEP 11: at most one a minute).
	pexInterval = time.Minute
	// pexFirstDelay is how long after a peer's extension handshake the
	// first message goes, leaving our other connections time to settle.
	pexFirstDelay = time.Second
	// pexMaxPeers bounds the added and the dropped peers of one message,
	// both ways (BEP 11 senders send at most 50 of each).
	pexMaxPeers = 50
	// pexMinGap is the least time between two messages from one peer that
	// we act on; more frequent ones are ignored.
	pexMinGap = 20 * time.Second
)

// pexPeer is peer exchange with one peer. Loop-owned.
type pexPeer struct {
	next     time.Time                   // when we may send the next ut_pex
	sent     map[netip.AddrPort]struct{} // peers this peer has been told of
	lastRecv time.Time                   // the last message from it we acted on
}

// pexAllowed reports whether PEX may be used for this torrent. Loop only.
func (t *Torrent) pexAllowed() bool {
	return !t.client.cfg.NoPEX && (t.picker == nil || !t.info.Private)
}

// listenAddr is where c accepts connections, if we know it: the address we
// dialled, or the port from its extension handshake.
func (c *conn) listenAddr() (netip.AddrPort, bool) {
	if !c.incoming {
		return c.addr, true
	}
	if c.exts.hs != nil && c.exts.hs.Port > 0 {
		return netip.AddrPortFrom(c.addr.Addr(), uint16(c.exts.hs.Port)), true
	}
	return netip.AddrPort{}, false
}

// pexTick sends the messages that are due.
func (t *Torrent) pexTick(now time.Time) {
	if !t.pexAllowed() {
		return
	}
	var cur map[netip.AddrPort]byte
	for c := range t.conns {
		if c.exts.ids[peer.ExtPex] == 0 || c.pex.next.IsZero() || now.Before(c.pex.next) {
			continue
		}
		if cur == nil {
			cur = t.pexPeers()
		}
		t.sendPex(c, cur, now)
	}
}

// pexPeers lists the connected peers we can vouch for, with their flags.
func (t *Torrent) pexPeers() map[netip.AddrPort]byte {
	cur := make(map[netip.AddrPort]byte, len(t.conns))
	for c := range t.conns {
		a, ok := c.listenAddr()
		if !ok {
			continue
		}
		var f byte
		if !c.incoming {
			f |= peer.PexFlagReachable
		}
		if t.peerIsSeed(c) {
			f |= peer.PexFlagSeed
		}
		if transportOf(c.nc) == overUTP {
			f |= peer.PexFlagUTP
		}
		cur[a] = f
	}
	return cur
}

// sendPex tells c what changed since the last message to it.
func (t *Torrent) sendPex(c *conn, cur map[netip.AddrPort]byte, now time.Time) {
	c.pex.next = now.Add(pexInterval)
	self, _ := c.listenAddr()
	var msg peer.PexMessage
	for a, f := range cur {
		if len(msg.Added) >= pexMaxPeers {
			break
		}
		if _, told := c.pex.sent[a]; !told && a != self {
			msg.Added = append(msg.Added, a)
			msg.AddedFlags = append(msg.AddedFlags, f)
		}
	}
	for a := range c.pex.sent {
		if len(msg.Dropped) >= pexMaxPeers {
			break
		}
		if _, ok := cur[a]; !ok {
			msg.Dropped = append(msg.Dropped, a)
		}
	}
	if len(msg.Added) == 0 && len(msg.Dropped) == 0 {
		return
	}
	b, err := msg.Marshal()
	if err != nil {
		return
	}
	if c.pex.sent == nil {
		c.pex.sent = make(map[netip.AddrPort]struct{})
	}
	for _, a := range msg.Added {
		c.pex.sent[a] = struct{}{}
	}
	for _, a := range msg.Dropped {
		delete(c.pex.sent, a)
	}
	c.send(peer.Message{Type: peer.Extended, ExtendedID: uint8(c.exts.ids[peer.ExtPex]), Payload: b})
}

// onPex takes in a peer's ut_pex message.
func (t *Torrent) onPex(c *conn, payload []byte) {
	if !t.pexAllowed() {
		return // we never announced it, or the torrent turned out private
	}
	now := time.Now()
	if !c.pex.lastRecv.IsZero() && now.Sub(c.pex.lastRecv) < pexMinGap {
		return
	}
	c.pex.lastRecv = now
	msg, err := peer.ParsePexMessage(payload, pexMaxPeers)
	if err != nil {
		// Harmless, and at most one every pexMinGap is even read.
		t.client.logf("%s: %s: ignored: %v", t.name(), c.addr, err)
		return
	}
	from := c.addr.Addr()
	var added, utpPeers []netip.AddrPort
	for i, a := range msg.Added {
		if pexUsable(a, from) {
			added = append(added, a)
			if i < len(msg.AddedFlags) && msg.AddedFlags[i]&peer.PexFlagUTP != 0 {
				utpPeers = append(utpPeers, a)
			}
		}
	}
	if len(added) > 0 {
		t.addCandidates(added)
		t.markUTP(utpPeers)
	}
}

// pexUsable reports whether a peer learned from the peer at from is worth
// dialling: a routable unicast address, and a loopback, private or
// link-local one only from a peer that is itself in such a range (a stranger
// must not point our connections at our own machine or network).
func pexUsable(a netip.AddrPort, from netip.Addr) bool {
	ip := a.Addr().Unmap()
	if !ip.IsValid() || a.Port() == 0 || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	local := func(ip netip.Addr) bool {
		return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
	}
	return !local(ip) || local(from.Unmap())
}
