package engine

import (
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/metafetch"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/picker"
)

// Metadata exchange (BEP 9): a magnet's torrent fetches its info dictionary
// from the peers that announce ut_metadata and its size. Which peer is asked
// for which piece, timeouts, assembly and blame are decided by t.meta, a
// metafetch.Fetch (see its doc); the loop sends its requests, feeds it the
// peers' extension handshakes and answers, and checks a complete copy off
// the loop: SHA-1 against the info-hash, parsing, opening the storage
// (which may check files). Then it adopts the info (adoptInfo). A copy that
// fails the check costs its senders: a sole sender is banned, several get a
// strike each (t.strikes, shared with failed pieces), and whoever sent a
// piece that differs from the good copy, once it arrives, is banned.
//
// Serving: peers may fetch our info dictionary a few times over per
// metaServeWindow; past that they only want our bandwidth.

const (
	// maxBadMeta is how many malformed ut_metadata messages a peer may send
	// before it is disconnected.
	maxBadMeta = 16
	// metaServeWindow is the period over which ut_metadata requests from
	// one peer are counted.
	metaServeWindow = 10 * time.Minute
)

// metaPeer is the metadata exchange with one peer that the fetch does not
// track: serving it, and its malformed messages. Loop-owned.
type metaPeer struct {
	served   int       // ut_metadata requests answered in this window
	servedAt time.Time // start of that window
	bad      int       // malformed ut_metadata messages received
	gave     bool      // a piece of our info dictionary was sent
}

// The fetch's pieces are the wire's (a compile error if they differ).
const _ = uint(metafetch.PieceSize-peer.MetadataPieceSize) + uint(peer.MetadataPieceSize-metafetch.PieceSize)

// newMetaFetch is the fetch of a torrent's info dictionary; setInfo drops
// it once the info is known.
func (t *Torrent) newMetaFetch() *metafetch.Fetch {
	return metafetch.New(metafetch.Config{
		MaxSize: t.client.cfg.MaxMetadataSize,
		Strikes: func(a netip.Addr) int { return t.strikes[a] }, // called on the loop
	})
}

// notePreInfoHave keeps a Have that arrived before the info, within the
// largest piece count an acceptable info could have; false if beyond it.
func (t *Torrent) notePreInfoHave(c *conn, idx int) bool {
	if idx >= t.client.cfg.MaxMetadataSize/20 {
		return false
	}
	c.has.pre = c.has.pre.Grow(idx)
	c.has.pre.Set(idx)
	return true
}

// metaPieces is the number of ut_metadata pieces of a size-byte dictionary.
func metaPieces(size int) int { return (size + peer.MetadataPieceSize - 1) / peer.MetadataPieceSize }

// metaPeerSeen tells the fetch what c's extension handshake claims: the
// size of the info dictionary, if c speaks ut_metadata.
func (t *Torrent) metaPeerSeen(c *conn) {
	if t.meta == nil {
		return
	}
	size := 0
	if c.exts.ids[peer.ExtMetadata] > 0 {
		size = c.exts.hs.MetadataSize
	}
	t.meta.SetPeer(metafetch.PeerID(c.id), c.addr.Addr(), size)
	t.requestMetadata(time.Now())
}

// requestMetadata sends the requests the fetch hands out.
func (t *Torrent) requestMetadata(now time.Time) {
	if t.meta == nil {
		return
	}
	for _, r := range t.meta.Next(now) {
		c := t.byID[picker.PeerID(r.Peer)]
		if c == nil {
			continue // cannot happen: removeConn tells the fetch; it times out
		}
		msg := peer.MetadataMessage{Type: peer.MetadataRequest, Piece: r.Piece}
		c.send(peer.Message{Type: peer.Extended, ExtendedID: uint8(c.exts.ids[peer.ExtMetadata]), Payload: msg.Marshal()})
	}
}

// metaTick re-asks timed-out pieces of others and starts new requests.
func (t *Torrent) metaTick(now time.Time) {
	if t.meta == nil {
		return
	}
	t.meta.Expire(now)
	t.requestMetadata(now)
}

// metaConnGone releases the pieces a closed connection was asked for.
func (t *Torrent) metaConnGone(c *conn) {
	if t.meta != nil && t.meta.RemovePeer(metafetch.PeerID(c.id)) {
		t.requestMetadata(time.Now())
	}
}

// metaOut is the number of our metadata requests c has not answered.
func (t *Torrent) metaOut(c *conn) int {
	if t.meta == nil {
		return 0
	}
	return t.meta.Out(metafetch.PeerID(c.id))
}

// onMetadataMessage handles a ut_metadata message: requests are served
// from our info dictionary (or rejected before we have one); data and
// rejects answer our requests.
func (t *Torrent) onMetadataMessage(c *conn, payload []byte) {
	mm, err := peer.ParseMetadataMessage(payload, t.client.cfg.MaxMetadataSize)
	if err != nil {
		// BEP 9 says to ignore unknown message types; a peer that keeps
		// sending what we cannot read is dropped.
		c.meta.bad++
		if c.meta.bad > maxBadMeta {
			t.violation(c, "%v", err)
		}
		return
	}
	now := time.Now()
	switch mm.Type {
	case peer.MetadataRequest:
		t.serveMetadata(c, mm.Piece)
	case peer.MetadataReject:
		if t.meta != nil && t.meta.Rejected(metafetch.PeerID(c.id), mm.Piece, now) {
			t.requestMetadata(now)
		}
	case peer.MetadataData:
		if t.meta == nil {
			return // late
		}
		// mm.Data aliases the payload, which the reader copied for us.
		asked, complete := t.meta.Received(metafetch.PeerID(c.id), mm.Piece, mm.TotalSize, mm.Data, now)
		switch {
		case complete:
			t.verifyInfo(t.meta.Assemble())
		case asked:
			t.requestMetadata(now)
		}
	}
}

// serveMetadata answers a peer's ut_metadata request. Each peer may ask
// for the dictionary a few times over per metaServeWindow (rejects
// included): one asking for more only wants our bandwidth and is dropped.
func (t *Torrent) serveMetadata(c *conn, piece int) {
	id := c.exts.ids[peer.ExtMetadata]
	if id == 0 {
		return // it cannot receive the answer
	}
	n := metaPieces(len(t.infoBytes))
	now := time.Now()
	if now.Sub(c.meta.servedAt) > metaServeWindow {
		c.meta.served, c.meta.servedAt = 0, now
	}
	if c.meta.served++; c.meta.served > 4*n+64 {
		t.violation(c, "%d ut_metadata requests in %v", c.meta.served, metaServeWindow)
		return
	}
	msg := peer.MetadataMessage{Type: peer.MetadataReject, Piece: piece}
	if t.infoBytes != nil && piece < n {
		s := piece * peer.MetadataPieceSize
		e := min(s+peer.MetadataPieceSize, len(t.infoBytes))
		msg = peer.MetadataMessage{Type: peer.MetadataData, Piece: piece, TotalSize: len(t.infoBytes), Data: t.infoBytes[s:e]}
		c.meta.gave = true
	}
	c.send(peer.Message{Type: peer.Extended, ExtendedID: uint8(id), Payload: msg.Marshal()})
}

// offerInfo gives a magnet's torrent the info of a .torrent added for the
// same hash; it is checked like a downloaded copy.
func (t *Torrent) offerInfo(mi *metainfo.MetaInfo) {
	if t.hasInfo.Load() || len(mi.InfoBytes) == 0 {
		return
	}
	t.post(func() {
		if t.meta != nil && t.meta.Offer(mi.InfoBytes) {
			t.verifyInfo(mi.InfoBytes, nil)
		}
	})
}

// verifyInfo starts the off-loop check of a candidate info dictionary
// (marks: who sent which piece; nil for an offered one).
func (t *Torrent) verifyInfo(buf []byte, marks []metafetch.Mark) {
	t.meta.BeginCheck()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		var (
			info  *metainfo.Info
			perr  error
			store storage.Torrent
			have  []int
			oerr  error
		)
		ok := t.infoMatches(buf)
		if ok {
			info, perr = metainfo.ParseInfo(buf)
		}
		if ok && perr == nil {
			store, have, oerr = t.provider().Open(t.infoHash, info)
		}
		posted := t.post(func() {
			t.metadataChecked(buf, marks, ok, info, perr, store, have, oerr)
		})
		if !posted && store != nil {
			store.Close()
		}
	}()
}

// metadataChecked runs on the loop with the outcome of verifyInfo.
func (t *Torrent) metadataChecked(buf []byte, marks []metafetch.Mark, ok bool, info *metainfo.Info, perr error, store storage.Torrent, have []int, oerr error) {
	now := time.Now()
	switch {
	case !ok:
		if next := t.metadataFailed(marks); next != nil {
			t.verifyInfo(next, nil)
			return
		}
		t.requestMetadata(now)
		return
	case perr != nil:
		// The info-hash itself names this dictionary: no peer can do better.
		t.meta.Unusable()
		t.client.logf("%s: the info dictionary matches the info-hash but is unusable: %v", t.name(), perr)
		return
	case oerr != nil:
		t.meta.Unusable()
		t.client.logf("%s: open storage for %q: %v", t.name(), info.Name, oerr)
		return
	}
	mi := &metainfo.MetaInfo{InfoBytes: buf, Info: info, InfoHash: t.infoHash, InfoHashV2: info.InfoHashV2, AnnounceList: t.tiers}
	if len(t.tiers) > 0 && len(t.tiers[0]) > 0 {
		mi.Announce = t.tiers[0][0]
	}
	if t.magnet != nil {
		mi.URLList = t.magnet.WebSeeds
	}
	liars := t.meta.Liars(buf)
	t.setInfo(mi, store, have) // drops the fetch
	t.adoptInfo(now)
	t.requestLayers(now)
	// Whoever sent something else in an earlier failed copy lied.
	for _, mk := range liars {
		t.ban(mk.From, "sent a corrupt piece %d of the metadata", mk.Piece)
	}
}

// metadataFailed punishes the senders of a copy that did not hash to the
// info-hash; it returns a dictionary offered meanwhile, to check next.
func (t *Torrent) metadataFailed(marks []metafetch.Mark) []byte {
	fl := t.meta.Failed(marks)
	n := len(fl.Senders)
	if fl.Culprit.IsValid() {
		n = 1
	}
	t.client.logf("%s: metadata failed its hash check (%d senders)", t.name(), n)
	if fl.Culprit.IsValid() {
		t.ban(fl.Culprit, "sent metadata that does not match the info-hash")
	}
	for _, a := range fl.Senders {
		t.strikes[a]++
		if t.strikes[a] >= maxStrikes {
			t.ban(a, "involved in %d failed pieces or metadata copies", t.strikes[a])
		}
	}
	return fl.Next
}

// adoptInfo brings connected peers up to date once a magnet's info is
// known: what they announced before is applied to the picker (and checked:
// a bitfield of the wrong size is a violation now), they learn the
// metadata size, and what storage already held is announced with Have
// messages (we said HaveNone, or nothing, at the start).
func (t *Torrent) adoptInfo(now time.Time) {
	n := t.info.NumPieces()
	maxMsg := int64(t.maxMessage())
	var have []uint32
	for p := 0; p < n; p++ {
		if t.HavePiece(p) {
			have = append(have, uint32(p))
		}
	}
	t.client.logf("%s: metadata received: %d bytes, %d pieces, %d files", t.name(), len(t.infoBytes), n, len(t.info.Files))
	for c := range t.conns {
		c.maxMsg.Store(maxMsg)
		t.picker.AddPeer(c.id)
		if !c.choke.peerChoking {
			t.picker.PeerChoked(c.id, false)
		}
		if !t.applyPreInfo(c, n) {
			continue
		}
		if c.ext {
			t.sendExtHandshake(c)
		}
		for _, p := range have {
			c.send(peer.Message{Type: peer.Have, Index: p})
		}
	}
	t.checkComplete()
	for c := range t.conns {
		if t.isComplete && t.peerIsSeed(c) {
			c.close(errBothSeeding)
			t.removeConn(c)
			continue
		}
		t.updateInterest(c)
		if c.choke.peerInterested {
			t.unchokeIfFree(c, now)
		}
	}
	t.fillAll()
	t.refreshStats(now)
}

// applyPreInfo feeds what c announced before the info to the picker; false
// if that turned out to be a violation (c is then gone).
func (t *Torrent) applyPreInfo(c *conn, n int) bool {
	switch {
	case c.has.preAll:
		t.setPeerPieces(c, nil, true)
	case c.has.bits != nil:
		if err := peer.CheckBitfield(c.has.bits, n); err != nil {
			t.violation(c, "%v", err)
			return false
		}
		t.setPeerPieces(c, c.has.bits, false)
	}
	ok := true
	c.has.pre.Each(func(i int) bool {
		if i >= n {
			t.violation(c, "have %d of %d pieces", i, n)
			ok = false
			return false
		}
		t.picker.PeerHave(c.id, i)
		t.notePeerHas(c, i)
		return true
	})
	c.has.pre = nil
	return ok
}
