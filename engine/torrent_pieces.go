package engine

import (
	"crypto/sha1"
	"hash"
	"hash/crc32"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/picker"
)

// partialPiece is a piece being assembled from blocks. Loop-owned.
type partialPiece struct {
	buf   []byte
	from  []netip.Addr // sender of each block; zero Addr = not yet received
	count int
	// good: buf is known to match the piece's hash already (a web seed's
	// piece, or one a reader waited for, hashed as it arrived), so
	// hashPiece skips the check.
	good bool
	// h hashes the piece's blocks as they arrive in order, once a read
	// waits for it (v1 only); nil otherwise.
	h *pieceHasher
}

// blockMark remembers who sent a block of a piece that failed its hash, and
// a checksum of what they sent, to find the liar once the piece verifies.
type blockMark struct {
	from netip.Addr
	sum  uint32
}

const (
	// maxHashBacklog bounds the pieces waiting to be hashed and written: past
	// it no new blocks are requested, so a slow disk costs download speed,
	// never unbounded memory. maxHashBytes bounds their bytes (hashLimit):
	// 24 pieces of 4 MiB were 96 MiB.
	maxHashBacklog = 24
	maxHashBytes   = 8 << 20
	// maxStrikes bans a peer involved in this many failed pieces even when
	// it was never proven to be the liar.
	maxStrikes = 5
)

// onPiece stores a received block and sends a complete piece for hashing.
func (t *Torrent) onPiece(c *conn, m *peer.Message, now time.Time) {
	defer putBlockBuf(m.Block)
	idx := int(m.Index)
	if idx >= t.info.NumPieces() || int64(m.Begin)+int64(len(m.Block)) > t.info.PieceLen(idx) || len(m.Block) == 0 {
		t.violation(c, "piece %d+%d/%d out of range", m.Index, m.Begin, len(m.Block))
		return
	}
	r := picker.Request{Piece: idx, Begin: m.Begin, Length: uint32(len(m.Block))}
	cancels, useful := t.picker.BlockReceived(c.id, r, now)
	for _, pr := range cancels {
		if o := t.byID[pr.Peer]; o != nil && o != c {
			o.send(peer.Message{Type: peer.Cancel, Index: uint32(pr.Piece), Begin: pr.Begin, Length: pr.Length})
		}
	}
	if !useful || t.HavePiece(idx) || m.Begin%peer.BlockSize != 0 {
		t.pub.wasted.Add(int64(len(m.Block)))
	} else {
		c.flow.lastPiece = now
		t.storeBlock(idx, m.Begin, m.Block, c.addr.Addr())
	}
	t.fill(c, now)
}

// storeBlock adds a useful block, aligned on peer.BlockSize, from a peer
// or a web seed (from) to its piece and sends a complete piece for hashing.
func (t *Torrent) storeBlock(idx int, begin uint32, block []byte, from netip.Addr) {
	pp := t.partial[idx]
	if pp == nil {
		pl := t.info.PieceLen(idx)
		pp = &partialPiece{
			buf:  getPieceBuf(int(pl)),
			from: make([]netip.Addr, (pl+peer.BlockSize-1)/peer.BlockSize),
		}
		t.partial[idx] = pp
	}
	b := int(begin / peer.BlockSize)
	if !pp.from[b].IsValid() {
		copy(pp.buf[begin:], block)
		pp.from[b] = from
		pp.count++
		t.hashArrived(idx, pp)
	} else {
		t.pub.wasted.Add(int64(len(block)))
	}
	if pp.count == len(pp.from) {
		delete(t.partial, idx)
		if pp.h != nil && pp.h.done == len(pp.buf) {
			// Wrong bytes are checked again off the loop, as any piece,
			// and its failure handled there.
			pp.good = pp.h.sum() == t.info.PieceHash(idx)
			if pp.good {
				t.arrivedOK++
			}
		}
		t.hashPiece(idx, pp)
	}
}

// hashArrived hashes the blocks of pp received in order from its start
// that it has not hashed yet, once a read waits for the piece: its check
// is then done with its last block, and the reader woken at once, not
// after a hash of the whole piece off the loop (0.5-0.8 ms for 1 MiB on
// the benches' machine, a tenth of a fast swarm's first byte). Pieces no
// one waits for are hashed off the loop as they were: hashing them all
// here would put every byte's SHA-1 on the loop's one core. v1 only (a v2
// piece's check is its Merkle tree). Loop only.
func (t *Torrent) hashArrived(idx int, pp *partialPiece) {
	if pp.h == nil {
		if t.info.HasV2() || t.picker == nil || !t.picker.Urgent(idx) {
			return
		}
		pp.h = &pieceHasher{idx: idx}
	}
	end := pp.h.done / peer.BlockSize
	for end < len(pp.from) && pp.from[end].IsValid() {
		end++
	}
	if n := min(end*peer.BlockSize, len(pp.buf)); n > pp.h.done {
		pp.h.add(idx, pp.buf[:n])
	}
}

// pieceHasher hashes pieces as their bytes arrive (a web seed's run, or
// the blocks of a piece a read waits for): add is given each piece's
// growing prefix in turn.
type pieceHasher struct {
	idx  int
	done int // bytes of piece idx hashed
	h    hash.Hash
}

// add hashes what prefix holds beyond what was hashed of piece idx,
// starting afresh on a new piece.
func (p *pieceHasher) add(idx int, prefix []byte) {
	if p.h == nil {
		p.h = sha1.New()
	}
	if idx != p.idx || p.done > len(prefix) {
		p.h.Reset()
		p.idx, p.done = idx, 0
	}
	p.h.Write(prefix[p.done:])
	p.done = len(prefix)
}

// sum returns the SHA-1 of the current piece's bytes hashed so far.
func (p *pieceHasher) sum() (s [20]byte) {
	p.h.Sum(s[:0])
	return s
}

// writePiece stores a verified piece again, off the loop, after its store
// refused it (see storeTick), and reports back like hashPiece.
func (t *Torrent) writePiece(idx int, pp *partialPiece) {
	t.hashing++
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		werr := t.store.WritePiece(idx, pp.buf)
		if !t.post(func() { t.pieceHashed(idx, pp, true, werr) }) {
			t.mem.forget(idx) // readers may still find it there
			putPieceBuf(pp.buf)
		}
	}()
}

// hashPiece checks a complete piece off the loop and reports back.
func (t *Torrent) hashPiece(idx int, pp *partialPiece) {
	t.hashing++
	check := t.hashCheck(idx)
	if check == nil {
		// v2: its file's piece layer is still being fetched; it stays
		// counted in t.hashing until then (torrent_v2.go).
		t.v2.waiting[idx] = pp
		return
	}
	if pp.good {
		// Verified as it arrived: its readers copy it from memory at
		// once, not after the hop to the goroutine.
		t.mem.put(idx, pp.buf)
		if t.waiters.wakeAll() {
			// And before the loop's next events: the reader just woken
			// waits in this thread's next slot of the scheduler, behind
			// the loop, which in a fast swarm has blocks of other
			// pieces to take for milliseconds on end while the other
			// core is as busy (the wake to the read's return took up
			// to 4.5 ms in the fast bench's first bytes, 0.1 ms
			// otherwise).
			runtime.Gosched()
		}
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ok := pp.good
		if !ok {
			select {
			case t.client.hashSem <- struct{}{}:
			case <-t.done:
				putPieceBuf(pp.buf)
				return
			}
			ok = check(pp.buf)
			<-t.client.hashSem
		}
		// The write happens outside the semaphore so that disk waits never
		// hold back hashing of the next pieces.
		var werr error
		if ok {
			// Verified: readers copy it from memory while the store
			// writes it (a cache's write takes tens of ms, more than the
			// download); pieceHashed withdraws it.
			if !pp.good {
				t.mem.put(idx, pp.buf)
				t.waiters.wakeAll()
			}
			// The readers just woken go first: the last one woken (here,
			// or on the loop before this goroutine took its place) waits
			// in this thread's next slot of the scheduler, and the
			// store's write (a copy of the piece into the cache, 1-3 ms
			// for 1 MiB) would otherwise run before its copy of a few
			// KiB whenever the other cores are busy.
			runtime.Gosched()
			werr = t.store.WritePiece(idx, pp.buf)
		}
		if !t.post(func() { t.pieceHashed(idx, pp, ok, werr) }) {
			t.mem.forget(idx)
			putPieceBuf(pp.buf)
		}
	}()
}

// hashLimit is how many pieces may wait to be hashed and written before
// fill stops asking for more: maxHashBacklog, within maxHashBytes, at
// least 2. Loop only, once the info is known.
func (t *Torrent) hashLimit() int {
	return max(2, min(maxHashBacklog, int(maxHashBytes/max(t.info.PieceLength, 1))))
}

// pieceHashed runs on the loop once a piece was checked (and stored if good).
func (t *Torrent) pieceHashed(idx int, pp *partialPiece, ok bool, werr error) {
	t.hashing--
	if t.hashing == t.hashLimit()-1 {
		defer t.fillAll()
	}
	if ok && werr != nil {
		// Not PieceFailed: that would fetch it again at once, for ever.
		// storeRefused holds it in memory again if it keeps it.
		t.mem.forget(idx)
		t.storeRefused(idx, werr, pp, time.Now()) // takes pp
		return
	}
	defer putPieceBuf(pp.buf)
	if !ok {
		t.pieceFailed(idx, pp)
		return
	}
	if ev, isEv := t.store.(storage.Evicter); isEv && !ev.Has(idx) {
		// Evicted since its write; the eviction's re-check may already
		// have run, and found nothing to clear.
		t.mem.forget(idx)
		t.evictedBeforeHashed(idx)
		return
	}
	t.storeWorked(time.Now())
	// Stored (perhaps again, after a refusal): readers find it there from
	// here on, so its bytes may leave memory.
	defer t.mem.forget(idx)
	if marks, ok := t.suspects[idx]; ok {
		// The piece is good now: whoever sent a different block lied;
		// the others are cleared of its failure.
		liars := map[netip.Addr]bool{}
		for b, mk := range marks {
			if !mk.from.IsValid() {
				continue
			}
			s, e := b*peer.BlockSize, min((b+1)*peer.BlockSize, len(pp.buf))
			if crc32.ChecksumIEEE(pp.buf[s:e]) != mk.sum {
				liars[mk.from] = true
				t.ban(mk.from, "sent a corrupt block of piece %d", idx)
			}
		}
		cleared := map[netip.Addr]bool{}
		for _, mk := range marks {
			if a := mk.from; a.IsValid() && !liars[a] && !cleared[a] && t.strikes[a] > 0 {
				t.strikes[a]-- // once per piece
				cleared[a] = true
			}
		}
		delete(t.suspects, idx)
	}
	t.markHave(idx)
	t.waiters.wakeAll()
	for c := range t.conns {
		c.send(peer.Message{Type: peer.Have, Index: uint32(idx)})
	}
	t.checkComplete()
}

// pieceFailed punishes the senders of a piece that did not match its hash.
func (t *Torrent) pieceFailed(idx int, pp *partialPiece) {
	t.picker.PieceFailed(idx)
	t.pub.hashFailed.Add(1)
	senders := map[netip.Addr]bool{}
	for _, a := range pp.from {
		senders[a] = true
	}
	t.client.logf("%s: piece %d failed its hash check (%d senders)", t.name(), idx, len(senders))
	if len(senders) == 1 {
		for a := range senders {
			t.ban(a, "sent piece %d, which failed its hash check", idx)
		}
		return
	}
	marks := make([]blockMark, len(pp.from))
	for b, a := range pp.from {
		s, e := b*peer.BlockSize, min((b+1)*peer.BlockSize, len(pp.buf))
		marks[b] = blockMark{from: a, sum: crc32.ChecksumIEEE(pp.buf[s:e])}
	}
	t.suspects[idx] = marks
	if t.checkBlocksV2(idx, pp) {
		return // the blocks' Merkle proofs will name the liar: no strikes
	}
	// The next copy comes from one peer: it verifies, and the marks name
	// whoever sent a block that differs from it, or it fails, and its
	// sender is the liar. Shared among peers (a piece a reader waits for
	// is), a liar would spoil every copy, and the honest senders' strikes
	// would get them banned beside it.
	t.picker.Solo(idx)
	for a := range senders {
		t.strikes[a]++
		if t.strikes[a] >= maxStrikes {
			t.ban(a, "involved in %d failed pieces", t.strikes[a])
		}
	}
}

// ban refuses an address from now on and drops its connections.
func (t *Torrent) ban(a netip.Addr, format string, args ...any) {
	if ws := t.webSeedAt(a); ws != nil {
		t.webSeedBadPiece(ws, format, args...) // not an address: a strike
		return
	}
	if t.banned.add(a) {
		t.client.logf("%s: banning %s: "+format, append([]any{t.name(), a}, args...)...)
	}
	for c := range t.conns {
		if c.addr.Addr() == a {
			c.close(errBanned)
			t.removeConn(c)
		}
	}
}

func (t *Torrent) checkComplete() {
	if t.picker == nil || t.isComplete || int(t.pub.numHave.Load()) < t.info.NumPieces() {
		return
	}
	t.isComplete = true
	for _, ws := range t.ws.list {
		ws.seed.CloseCursor()
	}
	if t.announcer != nil {
		t.announcer.Completed()
	}
	if t.announcerV2 != nil {
		t.announcerV2.Completed()
	}
	for c := range t.conns {
		t.updateInterest(c)
		if t.peerIsSeed(c) {
			c.close(errBothSeeding)
			t.removeConn(c)
		}
	}
	// The stats now, not at the next tick, and before Complete fires: a
	// status must not show 100% beside "downloading".
	t.refreshStats(time.Now())
	close(t.complete)
}

// pieceBufs keeps the piece buffers downloads return, for the next
// pieces: as many as the hash backlog holds (maxHashBytes), about what a
// steady download cycles through. Keeping as many as a download may hold
// at its peak (maxOutstandingBytes more) kept them live for good, and the
// collector lets the heap grow with what is live: the default cache's
// peak RSS in a cold read was a few MiB higher.
var pieceBufs = newBufList(maxHashBytes)

// warmPieces is how many bytes of piece buffers a torrent with pieces to
// download has ready before its first piece arrives (see bufList.warm):
// two pieces of up to 2 MiB, one of up to 4 MiB, none of larger ones.
const warmPieces = 4 << 20

// warmPieceBufs readies the buffers the first pieces of length n go into.
func warmPieceBufs(n int64) {
	if count := int(warmPieces / max(n, 1)); count > 0 {
		pieceBufs.warm(int(n), min(count, 2))
	}
}

func getPieceBuf(n int) []byte {
	held.add(int64(n))
	return pieceBufs.get(n)
}

func putPieceBuf(b []byte) {
	held.add(-int64(len(b)))
	pieceBufs.put(b)
}

// held counts the bytes of piece and block buffers handed out and not yet
// returned, in all torrents of the process, and their peak: what
// maxOutstandingBytes and hashLimit bound (TestInFlightBounded).
var held heldBytes

type heldBytes struct{ now, peak atomic.Int64 }

func (h *heldBytes) add(n int64) {
	v := h.now.Add(n)
	for {
		p := h.peak.Load()
		if v <= p || h.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// resetPeak starts a new peak from what is held now.
func (h *heldBytes) resetPeak() { h.peak.Store(h.now.Load()) }
