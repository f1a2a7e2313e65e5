package engine

import (
	"crypto/sha1"
	"hash/crc32"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
)

// Metadata exchange (BEP 9): a magnet's torrent fetches its info dictionary
// in 16 KiB pieces from the peers that announce ut_metadata and its size,
// several peers at once; a piece not answered in time is asked of another
// peer. The whole is checked against the info-hash off the loop, parsed, and
// the storage opened (which may check files), then the loop adopts the info
// (adoptInfo). A copy that fails the check costs its senders: a sole sender
// is banned; several get a strike each, what each sent is remembered to
// find the liar once a good copy arrives, and from then on every attempt
// takes all pieces from one peer, so the next failure names its culprit.

const (
	// metaRequestTimeout is how long a metadata piece may stay unanswered
	// before it is asked of another peer.
	metaRequestTimeout = 10 * time.Second
	// metaSkip is how long a peer that rejected a request or let it time
	// out is passed over.
	metaSkip = 30 * time.Second
	// metaPerPeer bounds the pieces asked of one peer at a time when
	// several share the work; metaSingle when one peer supplies them all.
	metaPerPeer = 4
	metaSingle  = 16
	// maxMetaMarks bounds the failed copies remembered for smart banning.
	maxMetaMarks = 4
	// maxBadMeta is how many malformed ut_metadata messages a peer may send
	// before it is disconnected.
	maxBadMeta = 16
	// metaServeWindow is the period over which ut_metadata requests from
	// one peer are counted.
	metaServeWindow = 10 * time.Minute
)

// metaPeer is the metadata exchange with one peer. Loop-owned.
type metaPeer struct {
	out       int       // our ut_metadata requests in flight to this peer
	skipUntil time.Time // rejected or timed out: ask others first
	served    int       // ut_metadata requests answered in this window
	servedAt  time.Time // start of that window
	bad       int       // malformed ut_metadata messages received
}

// metaState is the download of a magnet's info dictionary. Loop-owned.
type metaState struct {
	size     int          // bytes being fetched; 0 until chosen from peers' claims
	pieces   [][]byte     // received pieces; nil while missing
	from     []netip.Addr // sender of each received piece
	asked    []*conn      // who each missing piece is requested from
	askedAt  []time.Time
	got      int   // pieces received
	out      int   // requests in flight
	busy     bool  // a full copy is being checked, or the storage opened
	dead     bool  // the info-hash names an invalid info dictionary: stop
	single   bool  // a copy failed: one supplier per attempt from now on
	supplier *conn // the one supplier of this attempt, when single
	marks    []metaMark
	offered  *metainfo.MetaInfo // info added while a check was running
}

// metaMark is what one peer sent for one piece of a copy that failed.
type metaMark struct {
	piece int
	from  netip.Addr
	sum   uint32
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

// metaEligible reports whether c can be asked for metadata pieces now.
func (t *Torrent) metaEligible(c *conn, now time.Time) bool {
	return !c.removed && c.exts.ids[peer.ExtMetadata] > 0 && c.exts.hs != nil &&
		c.exts.hs.MetadataSize == t.meta.size && !now.Before(c.meta.skipUntil)
}

// chooseMetaSize settles the size to fetch: the claim most connected peers
// that can be asked now make, among those within our bound.
func (t *Torrent) chooseMetaSize(now time.Time) bool {
	votes := map[int]int{}
	best := 0
	for c := range t.conns {
		if c.exts.hs == nil || c.exts.ids[peer.ExtMetadata] == 0 || now.Before(c.meta.skipUntil) {
			continue
		}
		sz := c.exts.hs.MetadataSize
		if sz <= 0 || sz > t.client.cfg.MaxMetadataSize {
			continue
		}
		votes[sz]++
		if best == 0 || votes[sz] > votes[best] {
			best = sz
		}
	}
	if best == 0 {
		return false
	}
	n := metaPieces(best)
	ms := &t.meta
	ms.size = best
	ms.pieces = make([][]byte, n)
	ms.from = make([]netip.Addr, n)
	ms.asked = make([]*conn, n)
	ms.askedAt = make([]time.Time, n)
	ms.got = 0
	return true
}

// requestMetadata hands out missing metadata pieces to eligible peers.
func (t *Torrent) requestMetadata(now time.Time) {
	ms := &t.meta
	if t.picker != nil || ms.busy || ms.dead {
		return
	}
	if ms.size != 0 && ms.out == 0 && !t.anyMetaEligible(now) {
		// Nobody who claims the size being fetched can be asked now (gone,
		// or rejecting, or silent): start over with the other claims.
		t.resetMeta()
	}
	if ms.size == 0 && !t.chooseMetaSize(now) {
		return
	}
	if ms.single {
		t.requestMetadataSingle(now)
		return
	}
	for i := range ms.pieces {
		if ms.pieces[i] != nil || ms.asked[i] != nil {
			continue
		}
		var best *conn
		for c := range t.conns {
			if c.meta.out >= metaPerPeer || !t.metaEligible(c, now) {
				continue
			}
			if best == nil || c.meta.out < best.meta.out ||
				c.meta.out == best.meta.out && t.strikes[c.addr.Addr()] < t.strikes[best.addr.Addr()] {
				best = c
			}
		}
		if best == nil {
			return
		}
		t.askMetadata(best, i, now)
	}
}

// requestMetadataSingle asks one peer for every piece: the one supplying
// this attempt, else the eligible peer with the fewest strikes. A supplier
// that goes away, rejects or times out ends the attempt: one peer's pieces
// are never mixed with another's.
func (t *Torrent) requestMetadataSingle(now time.Time) {
	ms := &t.meta
	sup := ms.supplier
	if sup != nil && !t.metaEligible(sup, now) {
		t.resetMeta()
		if !t.chooseMetaSize(now) {
			return
		}
		sup = nil
	}
	if sup == nil {
		for c := range t.conns {
			if t.metaEligible(c, now) && (sup == nil || t.strikes[c.addr.Addr()] < t.strikes[sup.addr.Addr()]) {
				sup = c
			}
		}
		if sup == nil {
			return
		}
		ms.supplier = sup
	}
	for i := range ms.pieces {
		if sup.meta.out >= metaSingle {
			return
		}
		if ms.pieces[i] == nil && ms.asked[i] == nil {
			t.askMetadata(sup, i, now)
		}
	}
}

// anyMetaEligible reports whether some peer can be asked for the size
// being fetched now.
func (t *Torrent) anyMetaEligible(now time.Time) bool {
	for c := range t.conns {
		if t.metaEligible(c, now) {
			return true
		}
	}
	return false
}

func (t *Torrent) askMetadata(c *conn, i int, now time.Time) {
	t.meta.asked[i], t.meta.askedAt[i] = c, now
	t.meta.out++
	c.meta.out++
	msg := peer.MetadataMessage{Type: peer.MetadataRequest, Piece: i}
	c.send(peer.Message{Type: peer.Extended, ExtendedID: uint8(c.exts.ids[peer.ExtMetadata]), Payload: msg.Marshal()})
}

// unask forgets that piece i is requested (from whoever).
func (t *Torrent) unask(i int) {
	if c := t.meta.asked[i]; c != nil {
		c.meta.out--
		t.meta.out--
		t.meta.asked[i] = nil
	}
}

// resetMeta drops the pieces of the current attempt.
func (t *Torrent) resetMeta() {
	ms := &t.meta
	for i := range ms.asked {
		t.unask(i)
	}
	ms.size, ms.pieces, ms.from, ms.asked, ms.askedAt, ms.got = 0, nil, nil, nil, nil, 0
	ms.supplier = nil
}

// metaTick re-asks timed-out pieces of others and starts new requests.
func (t *Torrent) metaTick(now time.Time) {
	ms := &t.meta
	for i, c := range ms.asked {
		if c != nil && now.Sub(ms.askedAt[i]) > metaRequestTimeout {
			c.meta.skipUntil = now.Add(metaSkip)
			t.unask(i)
		}
	}
	t.requestMetadata(now)
}

// metaConnGone releases the pieces a closed connection was asked for.
func (t *Torrent) metaConnGone(c *conn) {
	ms := &t.meta
	if c.meta.out == 0 {
		return
	}
	for i, a := range ms.asked {
		if a == c {
			t.unask(i)
		}
	}
	t.requestMetadata(time.Now())
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
	ms := &t.meta
	switch mm.Type {
	case peer.MetadataRequest:
		t.serveMetadata(c, mm.Piece)
	case peer.MetadataReject:
		if t.picker == nil && mm.Piece < len(ms.asked) && ms.asked[mm.Piece] == c {
			t.unask(mm.Piece)
			c.meta.skipUntil = now.Add(metaSkip)
			t.requestMetadata(now)
		}
	case peer.MetadataData:
		i := mm.Piece
		if t.picker != nil || ms.busy || i >= len(ms.asked) || ms.asked[i] != c {
			return // late, or not asked of this peer
		}
		t.unask(i)
		if mm.TotalSize != ms.size {
			c.meta.skipUntil = now.Add(metaSkip)
			t.requestMetadata(now)
			return
		}
		ms.pieces[i] = mm.Data // aliases the payload, which the reader copied for us
		ms.from[i] = c.addr.Addr()
		ms.got++
		if ms.got == len(ms.pieces) {
			t.checkMetadata()
			return
		}
		t.requestMetadata(now)
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
	}
	c.send(peer.Message{Type: peer.Extended, ExtendedID: uint8(id), Payload: msg.Marshal()})
}

// checkMetadata verifies a complete copy off the loop: SHA-1 against the
// info-hash, parsing, opening the storage. The loop hears back in
// metadataChecked.
func (t *Torrent) checkMetadata() {
	ms := &t.meta
	buf := make([]byte, 0, ms.size)
	for _, p := range ms.pieces {
		buf = append(buf, p...)
	}
	var marks []metaMark
	for i, p := range ms.pieces {
		marks = append(marks, metaMark{piece: i, from: ms.from[i], sum: crc32.ChecksumIEEE(p)})
	}
	t.verifyInfo(buf, marks)
}

// offerInfo gives a magnet's torrent the info of a .torrent added for the
// same hash; it is checked like a downloaded copy.
func (t *Torrent) offerInfo(mi *metainfo.MetaInfo) {
	if t.hasInfo.Load() || len(mi.InfoBytes) == 0 {
		return
	}
	t.post(func() {
		ms := &t.meta
		switch {
		case t.picker != nil:
		case ms.busy:
			ms.offered = mi
		default:
			t.verifyInfo(mi.InfoBytes, nil)
		}
	})
}

// verifyInfo starts the off-loop check of a candidate info dictionary.
func (t *Torrent) verifyInfo(buf []byte, marks []metaMark) {
	t.meta.busy = true
	for i := range t.meta.asked {
		t.unask(i)
	}
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
		ok := sha1.Sum(buf) == [20]byte(t.infoHash)
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
func (t *Torrent) metadataChecked(buf []byte, marks []metaMark, ok bool, info *metainfo.Info, perr error, store storage.Torrent, have []int, oerr error) {
	ms := &t.meta
	ms.busy = false
	now := time.Now()
	switch {
	case !ok:
		t.metadataFailed(marks)
		if mi := ms.offered; mi != nil {
			ms.offered = nil
			t.verifyInfo(mi.InfoBytes, nil)
			return
		}
		t.requestMetadata(now)
		return
	case perr != nil:
		// The info-hash itself names this dictionary: no peer can do better.
		ms.dead = true
		t.resetMeta()
		t.client.logf("%s: the info dictionary matches the info-hash but is unusable: %v", t.name(), perr)
		return
	case oerr != nil:
		ms.dead = true
		t.resetMeta()
		t.client.logf("%s: open storage for %q: %v", t.name(), info.Name, oerr)
		return
	}
	mi := &metainfo.MetaInfo{InfoBytes: buf, Info: info, InfoHash: t.infoHash, AnnounceList: t.tiers}
	if len(t.tiers) > 0 && len(t.tiers[0]) > 0 {
		mi.Announce = t.tiers[0][0]
	}
	if t.magnet != nil {
		mi.URLList = t.magnet.WebSeeds
	}
	suspects := ms.marks
	t.meta = metaState{}
	t.setInfo(mi, store, have)
	t.adoptInfo(now)
	// Whoever sent something else in an earlier failed copy lied.
	good := make([]uint32, metaPieces(len(buf)))
	for i := range good {
		s := i * peer.MetadataPieceSize
		good[i] = crc32.ChecksumIEEE(buf[s:min(s+peer.MetadataPieceSize, len(buf))])
	}
	for _, mk := range suspects {
		if mk.piece < len(good) && mk.sum != good[mk.piece] {
			t.ban(mk.from, "sent a corrupt piece %d of the metadata", mk.piece)
		}
	}
}

// metadataFailed punishes the senders of a copy that did not hash to the
// info-hash and starts over.
func (t *Torrent) metadataFailed(marks []metaMark) {
	ms := &t.meta
	senders := map[netip.Addr]bool{}
	for _, mk := range marks {
		senders[mk.from] = true
	}
	t.client.logf("%s: metadata failed its hash check (%d senders)", t.name(), len(senders))
	ms.single = true
	t.resetMeta()
	if len(senders) == 1 {
		for a := range senders {
			t.ban(a, "sent metadata that does not match the info-hash")
		}
		return
	}
	if len(ms.marks)/max(1, len(marks)) < maxMetaMarks {
		ms.marks = append(ms.marks, marks...)
	}
	for a := range senders {
		t.strikes[a]++
		if t.strikes[a] >= maxStrikes {
			t.ban(a, "involved in %d failed pieces or metadata copies", t.strikes[a])
		}
	}
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
