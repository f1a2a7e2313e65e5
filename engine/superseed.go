package engine

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

// Super-seeding (BEP 16): an initial seed with a small uplink hides what it
// has and hands each peer a few pieces at a time (superOffers), the rarest
// it lacks, each announced with a HAVE, so each byte we upload reaches the
// swarm once instead of the same popular pieces going out again and again.
//
// An offer is done, and replaced by the next, when:
//   - another peer announces the piece: it was passed on, or reached the
//     swarm another way (BEP 16's strict rule);
//   - the peer itself announces it while some piece has still been shown
//     to nobody: the first pass goes as fast as the peers fetch, as
//     libtorrent's default (non-strict) super-seeding does, and still sends
//     each piece once before any twice; after it, the peer waits for its
//     piece to be passed on, at most superPassOn;
//   - it stood superStale unfetched (the peer does not want it).
//
// A peer that downloads everything but whose readers wait for other pieces
// fetches its offers anyway (the picker does not let a read block the
// rest), passes them on, and so gets the next. A peer that wants none of
// its offers at all (it fetches only what its readers want) says so by
// asking for none of them while it is uninterested or unchoked, and is
// shown every piece after superUnwanted.
// Peers without anyone to share with fall back to normal seeding.
// All of it is loop-owned.

const (
	// superOffers is how many offers a peer holds at once: with one, the
	// seed's link idles while each peer announces a piece and asks for
	// the next (libtorrent offers two as well).
	superOffers = 2
	// superPassOn is how long a peer that holds an offered piece may wait
	// for another peer to announce it before it gets the next one anyway
	// (no one else wants it, or no one else shares).
	superPassOn = 20 * time.Second
	// superStale is how long an offer that the peer has not fetched stands
	// before it is replaced by another (the peer does not want it).
	superStale = 60 * time.Second
	// superUnwanted is how long a peer may hold offers it has not fetched
	// nor asked for, while it is uninterested or unchoked, before it is
	// shown every piece: it downloads only what its readers want (a mount
	// without --download all), which is none of what we offered, and we
	// cannot know what that is; it takes only what it reads. Interest
	// alone does not say it wants our offers: a mount stays interested
	// for a while after each read (the picker's interest linger).
	superUnwanted = 5 * time.Second
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
	offers   []superOffer // pieces offered and not yet passed on, at most superOffers
	filledAt time.Time    // when offers were last topped up (or tried)
	coldAt   time.Time    // since when it holds unfetched offers, none asked for, and is uninterested or unchoked; zero otherwise
	shown    peer.Bits    // every piece we announced to it (it may request those)
	revealed bool         // shown everything: served like a normal seed serves
}

// superOffer is one piece offered to a peer.
type superOffer struct {
	piece int
	at    time.Time // when it was offered
	got   time.Time // when the peer announced it; zero before
	asked bool      // the peer requested a block of it
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
	c.super.offers, c.super.filledAt = nil, time.Now()
	c.super.shown = peer.NewBits(t.info.NumPieces())
	if c.fast {
		c.send(peer.Message{Type: peer.HaveNone})
	} else {
		c.send(peer.Message{Type: peer.Bitfield, Bitfield: peer.NewBits(t.info.NumPieces())})
	}
}

// superMayServe reports whether c may have piece i, which it requested: we
// announced it to c. A request for an offer marks it asked (superTick).
func (t *Torrent) superMayServe(c *conn, i int) bool {
	if !t.superHides(c) {
		return true
	}
	if c.super.shown == nil || !c.super.shown.Has(i) {
		return false
	}
	for k := range c.super.offers {
		if c.super.offers[k].piece == i {
			c.super.offers[k].asked = true // it wants what we offered: not cold
		}
	}
	return true
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
			if o != c && t.superHides(o) && o.super.drop(i) {
				t.superFill(o, now)
			}
		}
	}
	if !t.superHides(c) {
		return
	}
	got := false
	for k := range c.super.offers {
		o := &c.super.offers[k]
		if o.got.IsZero() && t.peerHasPiece(c, o.piece) {
			o.got, got = now, true
		}
	}
	if got {
		// It fetched an offer: done if passed on already, or, while some
		// piece is still unshown, at once (the first pass's pace is the
		// peers' own).
		fresh := t.superFresh(c)
		c.super.offers = slices.DeleteFunc(c.super.offers, func(o superOffer) bool {
			return !o.got.IsZero() && (fresh || t.superPassedOn(c, o.piece))
		})
	}
	t.superFill(c, now)
}

// drop forgets the offer of piece i; it reports whether there was one.
func (sp *superPeer) drop(i int) bool {
	n := len(sp.offers)
	sp.offers = slices.DeleteFunc(sp.offers, func(o superOffer) bool { return o.piece == i })
	return len(sp.offers) < n
}

// offered reports whether piece i is among the peer's offers.
func (sp *superPeer) offered(i int) bool {
	return slices.ContainsFunc(sp.offers, func(o superOffer) bool { return o.piece == i })
}

// superPassedOn reports whether a peer other than c holds piece i.
func (t *Torrent) superPassedOn(c *conn, i int) bool {
	for o := range t.conns {
		if o != c && t.peerHasPiece(o, i) {
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

// superFill tops c's offers up to superOffers.
func (t *Torrent) superFill(c *conn, now time.Time) {
	c.super.filledAt = now
	for len(c.super.offers) < superOffers {
		best, _ := t.superPick(c)
		if best < 0 {
			return // it has, or is offered, everything we have
		}
		c.super.offers = append(c.super.offers, superOffer{piece: best, at: now})
		if !c.super.shown.Has(best) {
			c.super.shown.Set(best)
			c.send(peer.Message{Type: peer.Have, Index: uint32(best)})
		}
	}
}

// superFresh reports whether the next offer for c would be a piece that no
// connected peer holds or is being offered.
func (t *Torrent) superFresh(c *conn) bool {
	best, avail := t.superPick(c)
	return best >= 0 && avail == 0
}

// superPick returns the rarest piece c lacks and is not offered, and how
// many connected peers hold it or are being offered it; ties are broken
// at random so that peers connected at once get different pieces. -1 when
// there is none. O(pieces × peers).
func (t *Torrent) superPick(c *conn) (int, int32) {
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
		if o != c && t.superHides(o) {
			for _, of := range o.super.offers {
				avail[of.piece]++
			}
		}
	}
	// A piece shown before and not fetched counts as a little less rare:
	// a fresh one goes first.
	score := func(i int) int32 { return 2*avail[i] + boolInt(c.super.shown.Has(i)) }
	best := -1
	start := rand.IntN(n)
	for k := range n {
		i := (start + k) % n
		if t.peerHasPiece(c, i) || !t.HavePiece(i) || c.super.offered(i) {
			continue
		}
		if best < 0 || score(i) < score(best) {
			best = i
		}
	}
	if best < 0 {
		return -1, 0
	}
	return best, avail[best]
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
	c.super.offers = nil
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
		// Cold: it holds offers it has neither fetched nor asked for,
		// and it is uninterested, or unchoked and free to ask (a choked
		// peer that is interested cannot ask).
		unfetched, asked := false, false
		for _, o := range c.super.offers {
			if o.got.IsZero() {
				unfetched, asked = true, asked || o.asked
			}
		}
		if unfetched && !asked && (!c.choke.peerInterested || !c.choke.amChoking) {
			if c.super.coldAt.IsZero() {
				c.super.coldAt = now
			} else if now.Sub(c.super.coldAt) >= superUnwanted {
				t.superReveal(c, "it wants none of the pieces offered")
				continue
			}
		} else {
			c.super.coldAt = time.Time{}
		}
		n := len(c.super.offers)
		c.super.offers = slices.DeleteFunc(c.super.offers, func(o superOffer) bool {
			return !o.got.IsZero() && now.Sub(o.got) >= superPassOn ||
				o.got.IsZero() && now.Sub(o.at) >= superStale
		})
		if len(c.super.offers) < n || len(c.super.offers) < superOffers && now.Sub(c.super.filledAt) >= time.Second {
			t.superFill(c, now)
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
