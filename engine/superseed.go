package engine

import (
	"math/rand/v2"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

// Super-seeding (BEP 16): an initial seed with a small uplink hides what it
// has and hands each peer one piece at a time, the rarest that peer lacks,
// announced with a HAVE. It offers a peer its next piece only once another
// peer has announced the previous one: the piece was passed on, so each
// byte we upload reaches the swarm once instead of the same popular pieces
// going out again and again. Peers without anyone to share with fall back
// to normal seeding. All of it is loop-owned.

const (
	// superPassOn is how long a peer that holds its offered piece may wait
	// for another peer to announce it before it gets the next one anyway
	// (no one else wants it, or no one else shares).
	superPassOn = 20 * time.Second
	// superStale is how long an offer that the peer has not fetched stands
	// before it is replaced by another (the peer does not want it).
	superStale = 60 * time.Second
	// superAlone is how long a leecher may be the only one connected
	// before it is shown every piece: with no one to pass pieces on to,
	// super-seeding would only slow it down.
	superAlone = 10 * time.Second
	// superLogEvery spaces the log lines that report the upload so far.
	superLogEvery = time.Minute
)

// superState is the torrent's super-seeding state. Loop-owned.
type superState struct {
	active   bool      // super-seeding (SuperSeed asked and the torrent was complete at the start)
	aloneAt  time.Time // since when a single leecher has been connected; zero otherwise
	loggedAt time.Time // the last superLog
	loggedUp int64     // uploaded at the last superLog line
}

// superPeer is what super-seeding has shown one peer. Loop-owned.
type superPeer struct {
	offer     int       // the piece offered and not yet passed on; -1 for none
	offeredAt time.Time // when offer was made
	gotAt     time.Time // when the peer announced offer; zero before
	shown     peer.Bits // every piece we announced to it (it may request those)
	revealed  bool      // shown everything: served like a normal seed serves
}

// superStart turns super-seeding on for a torrent that asked for it and is
// complete when its loop starts. Loop only, before any connection.
func (t *Torrent) superStart() {
	if !t.opts.SuperSeed || t.picker == nil {
		return
	}
	if !t.isComplete {
		t.client.logf("%s: not super-seeding: the torrent is not complete", t.name())
		return
	}
	t.super.active = true
	t.super.loggedAt = time.Now()
	t.client.logf("%s: super-seeding %d pieces (BEP 16)", t.name(), t.info.NumPieces())
}

// superHides reports whether c is to be shown pieces one at a time.
func (t *Torrent) superHides(c *conn) bool {
	return t.super.active && !c.super.revealed
}

// superIntro is what a super-seed says first: that it has nothing.
func (t *Torrent) superIntro(c *conn) {
	c.super.offer, c.super.offeredAt = -1, time.Now()
	c.super.shown = peer.NewBits(t.info.NumPieces())
	if c.fast {
		c.send(peer.Message{Type: peer.HaveNone})
	} else {
		c.send(peer.Message{Type: peer.Bitfield, Bitfield: peer.NewBits(t.info.NumPieces())})
	}
}

// superMayServe reports whether c may have piece i: we announced it to c.
func (t *Torrent) superMayServe(c *conn, i int) bool {
	return !t.superHides(c) || c.super.shown != nil && c.super.shown.Has(i)
}

// superPeerHas is told that c announced piece i (a HAVE), or its whole set
// (i < 0: a bitfield, HAVE ALL or HAVE NONE).
func (t *Torrent) superPeerHas(c *conn, i int, now time.Time) {
	if !t.super.active {
		return
	}
	if i >= 0 {
		// Peers that were offered i and saw another peer announce it have
		// passed it on: each gets its next piece (BEP 16's strict rule).
		for o := range t.conns {
			if o != c && t.superHides(o) && o.super.offer == i {
				t.superOfferNext(o, now)
			}
		}
		if c.super.offer == i && c.super.gotAt.IsZero() {
			c.super.gotAt = now
		}
	}
	if t.superHides(c) && (c.super.offer < 0 || t.peerHasPiece(c, c.super.offer) && t.superPassedOn(c)) {
		t.superOfferNext(c, now)
	}
}

// superPassedOn reports whether a peer other than c holds c's offered piece.
func (t *Torrent) superPassedOn(c *conn) bool {
	for o := range t.conns {
		if o != c && t.peerHasPiece(o, c.super.offer) {
			return true
		}
	}
	return false
}

func (t *Torrent) peerHasPiece(c *conn, i int) bool {
	if i < 0 {
		return false
	}
	if c.has.count >= t.info.NumPieces() {
		return true
	}
	return c.has.bits != nil && c.has.bits.Has(i)
}

// superOfferNext offers c the rarest piece it lacks: the fewest connected
// peers hold it or are being offered it; ties are broken at random so that
// peers connected at once get different pieces.
func (t *Torrent) superOfferNext(c *conn, now time.Time) {
	n := t.info.NumPieces()
	avail := make([]int32, n)
	for o := range t.conns {
		if o.has.count >= n {
			for i := range avail {
				avail[i]++
			}
		} else if o.has.bits != nil {
			for i := range n {
				if o.has.bits.Has(i) {
					avail[i]++
				}
			}
		}
		if o != c && t.superHides(o) && o.super.offer >= 0 {
			avail[o.super.offer]++
		}
	}
	// A piece shown before and not fetched counts as a little less rare:
	// a fresh one goes first.
	score := func(i int) int32 { return 2*avail[i] + boolInt(c.super.shown.Has(i)) }
	best := -1
	start := rand.IntN(n)
	for k := range n {
		i := (start + k) % n
		if t.peerHasPiece(c, i) || !t.HavePiece(i) {
			continue
		}
		if best < 0 || score(i) < score(best) {
			best = i
		}
	}
	c.super.offer, c.super.offeredAt, c.super.gotAt = best, now, time.Time{}
	if best < 0 {
		return // it has everything we have
	}
	if !c.super.shown.Has(best) {
		c.super.shown.Set(best)
		c.send(peer.Message{Type: peer.Have, Index: uint32(best)})
	}
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// superReveal shows c every piece: it is served like a normal seed serves.
func (t *Torrent) superReveal(c *conn, why string) {
	if c.super.revealed {
		return
	}
	c.super.revealed = true
	c.super.offer = -1
	t.client.logf("%s: %s: super-seeding: showing it every piece: %s", t.name(), c.addr, why)
	if c.fast && t.pub.numHave.Load() == int64(t.info.NumPieces()) {
		c.send(peer.Message{Type: peer.HaveAll})
	} else {
		c.send(peer.Message{Type: peer.Bitfield, Bitfield: t.bitfield()})
	}
}

// superTick runs every second: offers that stood too long, lone leechers,
// and the log of what we uploaded against the content's size.
func (t *Torrent) superTick(now time.Time) {
	if !t.super.active {
		return
	}
	var leechers []*conn
	for c := range t.conns {
		if !t.peerIsSeed(c) {
			leechers = append(leechers, c)
		}
	}
	if len(leechers) == 1 {
		if t.super.aloneAt.IsZero() {
			t.super.aloneAt = now
		} else if now.Sub(t.super.aloneAt) >= superAlone {
			t.superReveal(leechers[0], "no other peer to pass pieces on to")
		}
	} else {
		t.super.aloneAt = time.Time{}
	}
	for _, c := range leechers {
		if !t.superHides(c) {
			continue
		}
		switch {
		case c.super.offer < 0:
			if now.Sub(c.super.offeredAt) >= time.Second {
				t.superOfferNext(c, now)
			}
		case !c.super.gotAt.IsZero() && now.Sub(c.super.gotAt) >= superPassOn,
			c.super.gotAt.IsZero() && now.Sub(c.super.offeredAt) >= superStale:
			t.superOfferNext(c, now)
		}
	}
	if now.Sub(t.super.loggedAt) >= superLogEvery {
		t.superLog(now)
	}
}

// superLog reports the bytes uploaded against the content's size, the
// figure super-seeding exists to keep near 1.
func (t *Torrent) superLog(now time.Time) {
	up := t.pub.uploaded.Load()
	t.super.loggedAt = now
	if up == t.super.loggedUp {
		return
	}
	t.super.loggedUp = up
	t.client.logf("%s: super-seeding: uploaded %d bytes, %.2fx the content's %d", t.name(), up, float64(up)/float64(max(t.info.TotalLength, 1)), t.info.TotalLength)
}
