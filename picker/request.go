package picker

import (
	"math"
	"time"
)

// Selection tuning. See doc.go.
const (
	urgentSlowFactor = 2.0                          // see urgentSlow
	urgentSlack      = 0.05                         // seconds added to that comparison
	dupMargin        = int64(20 * time.Millisecond) // a duplicate must beat the holder by this much
	holderStall      = 500 * time.Millisecond       // a holder silent this long is not delivering
	maxDupHolders    = 2                            // holders of one block outside endgame
	endgameHolders   = 3                            // holders of one block in endgame
	queueTime        = 1.0                          // seconds of non-urgent work queued on a peer
	urgentQueueTime  = 0.25                         // the same while urgent blocks wait for a peer
	sparseScan       = 128                          // peers with fewer pieces are scanned by bitfield
	partnerFactor    = 2.0                          // a partial peer this much slower than a seed still counts as comparable
	partnerScan      = 512                          // pieces a seed skips for partners before it waits
	urgentHorizon    = 0.25                         // seconds of a peer's rate, beyond its latency, it may hold for urgent pieces
	urgentMinHold    = 16                           // blocks any peer may hold for urgent pieces
	spreadMin        = 8                            // blocks of a readahead piece a peer may take, at least
)

// selection is one Next call's work.
type selection struct {
	p    *Picker
	pe   *peer
	t    int64
	max  int
	out  []Request
	slow bool  // pe is far slower than the best peer: keep it off urgent work
	gate int64 // slow peers skip window pieces due before this

	refusedSkips int  // blocks take left because pe refused them lately
	othersPiece  int  // 1 + the piece othersAns answers for (0: none yet)
	othersAns    bool // whether another unchoked peer has othersPiece

	preempted  bool
	urgentLeft bool // an urgent piece pe has still has unrequested blocks
	tight      bool // a window piece is due before this peer's queue drains
	gated      []span
	partners   []*peer // when pe is a seed: comparable partial peers with room (partnersOf)
	partnersOK bool    // partners computed
}

// Next returns up to max new block requests for the peer and records them
// as outstanding. Call it whenever the peer has free pipeline slots; max is
// that number. It returns nil when the peer has nothing we want now.
//
// Order: blocks under pending reads (only from peers not far slower than
// the best; each urgent piece shared so that all peers finish their parts
// together), duplicates of late urgent blocks, readahead windows by
// deadline, media heads and tails, then the background policy: partial
// pieces before new ones, rarest first; endgame duplicates at the very end.
//
// To make room for urgent work, Next may withdraw some of the peer's queued
// requests: drain Cancels afterwards (or at the next Timeouts) and send
// CANCEL for them; the freed slots are for the next call.
func (p *Picker) Next(id PeerID, now time.Time, max int) []Request {
	p.tick(now)
	pe := p.peer(id)
	if pe == nil || max <= 0 || p.n == 0 {
		return nil
	}
	t := p.ts(now)
	max = min(max, maxOutPerPeer-len(pe.out))
	if max <= 0 {
		return nil
	}
	p.refreshRank(t)
	if p.urgentDirty {
		p.rebuildUrgent()
	}
	s := &selection{p: p, pe: pe, t: t, max: max}
	if pe.choked {
		s.allowedFast()
		return s.out
	}
	switch p.strategy {
	case stratRarest, stratSequential:
		s.background()
		s.endgame()
		return s.out
	}
	s.slow = p.urgentSlow(pe)
	if pe.speed(p.pieceLen) > urgentSlowFactor*p.rank.bestPiece+urgentSlack {
		s.gate = t + pe.estNanos(p.pieceLen)
	}
	s.urgent()
	s.duplicateLate()
	s.windows()
	s.headTail()
	if p.policy == All {
		s.background()
		s.endgame()
	}
	return s.out
}

func (s *selection) full() bool { return len(s.out) >= s.max }

// room is how many more non-urgent blocks pe may queue: about queueTime of
// its rate, so an urgent request later waits behind little.
//
// While an urgent piece that pe has still has unrequested blocks, nothing
// else is queued: this peer asks again as soon as its part arrives, and
// the other peers' shares are computed against queues that hold urgent
// work only.
// While a window piece is due before the queue drains, a quarter second.
func (s *selection) room() int {
	if s.urgentLeft {
		return 0 // queue nothing behind: come back soon for the rest
	}
	q := queueTime
	if s.tight {
		q = urgentQueueTime
	}
	limit := max(4, int(s.pe.rateOrDefault()*q/float64(s.p.blk)))
	return min(s.max-len(s.out), limit-len(s.pe.out))
}

// take requests up to limit unrequested blocks of piece from pe; hot
// marks requests made for a reader.
func (s *selection) take(piece, limit int, hot bool) int {
	if limit <= 0 || s.p.have.get(piece) {
		return 0
	}
	solo, may := s.p.soloFor(piece, s.pe)
	if !may {
		return 0
	}
	if solo {
		limit = s.max - len(s.out) // all it can: no one else will
	}
	pa := s.p.partOf(piece)
	if pa == nil {
		pa = s.p.startPart(piece)
	}
	n := 0
	for b := pa.nextUnreq(0); b >= 0 && n < limit; b = pa.nextUnreq(b + 1) {
		if ago, ok := s.pe.refusedAgo(s.p.key(piece, b), s.p.clock); ok && (ago < int64(rejectBackoffAlone) || s.othersHave(piece)) {
			s.refusedSkips++
			continue // for others to send
		}
		s.out = append(s.out, s.p.addHolder(pa, b, s.pe, s.t, hot))
		n++
	}
	return n
}

// dup requests block b of pa from pe as a duplicate.
func (s *selection) dup(pa *partial, b int) {
	s.out = append(s.out, s.p.addHolder(pa, b, s.pe, s.t, true))
}

func (s *selection) urgent() {
	p := s.p
	for _, u := range p.urgent {
		if s.full() {
			return
		}
		if p.busy.get(u.piece) || !s.pe.hasPiece(u.piece) || s.slow && s.fasterHas(u.piece) {
			continue
		}
		if !s.preempted {
			// Our request joins the end of the peer's queue: take back the
			// queued work nobody waits for so it does not go first.
			s.preempted = true
			p.preemptPeer(s.pe, p.urgentRank(u.piece), true)
		}
		s.take(u.piece, min(s.share(u.piece), s.max-len(s.out)), true)
	}
	// Only urgent pieces pe could serve hold its queue back: a read
	// waiting on a piece pe lacks (no source has it yet, as under a
	// super-seed that offers each host a piece at a time) must not keep
	// pe from fetching what it does have, or the swarm stalls.
	s.urgentLeft = p.urgentUnaskedFor(s.pe)
}

// othersHave reports whether an unchoked peer other than pe has piece
// (remembered for the last piece asked: take asks per refused block).
func (s *selection) othersHave(piece int) bool {
	if s.othersPiece == piece+1 {
		return s.othersAns
	}
	s.othersPiece, s.othersAns = piece+1, s.otherHas(piece, false)
	return s.othersAns
}

// fasterHas reports whether an unchoked peer that is not slow has piece.
func (s *selection) fasterHas(piece int) bool { return s.otherHas(piece, true) }

// otherHas reports whether an unchoked peer other than pe has piece (and,
// with fast, is not slow).
func (s *selection) otherHas(piece int, fast bool) bool {
	p := s.p
	for _, o := range p.peers {
		if o != s.pe && !o.choked && o.hasPiece(piece) && !(fast && p.urgentSlow(o)) {
			return true
		}
	}
	return false
}

// share is how many of urgent piece's unrequested blocks pe should take,
// so that the peers that can serve it finish at about the same time T:
// peer i, free after e_i seconds (latency plus its queue, which holds what
// it already took) at rate r_i, takes (T - e_i)*r_i bytes, where
// T = (unrequested + sum r_i*e_i) / sum r_i.
// A far, slow or busy peer takes few or none; at least one when asked, so
// a piece only pe has still progresses. O(peers), and only for urgent
// pieces with unrequested blocks.
func (s *selection) share(piece int) int {
	p, pe := s.p, s.pe
	unreq := p.numBlocks(piece)
	if pa := p.partOf(piece); pa != nil {
		unreq = pa.nUnreq
	}
	var sumR, sumRE float64
	for _, o := range p.peers {
		if o.choked || !o.hasPiece(piece) || o != pe && p.urgentSlow(o) {
			continue
		}
		r := o.rateOrDefault()
		sumR += r
		sumRE += r * o.est(0)
	}
	hold := s.holdCap()
	if sumR <= 0 {
		return min(unreq, hold)
	}
	T := (float64(unreq)*float64(p.blk) + sumRE) / sumR
	mine := (T - pe.est(0)) * pe.rateOrDefault() / float64(p.blk)
	return min(max(1, int(mine+0.5)), hold)
}

// holdCap is how many more urgent blocks pe may take now: its queue is
// kept to what it delivers in its latency plus urgentHorizon (at least
// urgentMinHold blocks, a quarter of a 1 MiB piece, enough to cover a
// 60 ms round trip at 4 MB/s before its rate is known), whatever the
// shares say. The shares know only the peers
// unchoked at this instant: right after a mount, the first seeder to
// unchoke us would take a whole piece that the others, unchoking a
// millisecond later, could have shared. What is left is taken by whoever
// comes back first as its blocks arrive.
func (s *selection) holdCap() int {
	limit := max(urgentMinHold, int(s.pe.rateOrDefault()*(s.pe.latOrDefault()+urgentHorizon)/float64(s.p.blk)))
	return max(0, limit-len(s.pe.out))
}

// duplicateLate asks pe again for urgent blocks another peer holds when pe
// would deliver them sooner (the holder is late or slow). The first copy to
// arrive makes BlockReceived cancel the other.
func (s *selection) duplicateLate() {
	if s.slow {
		return
	}
	p := s.p
	for _, u := range p.urgent {
		if s.full() {
			return
		}
		pa := p.partOf(u.piece)
		if pa == nil || !s.pe.hasPiece(u.piece) {
			continue
		}
		for b := range pa.blocks {
			if s.full() {
				return
			}
			bl := &pa.blocks[b]
			if bl.recv || len(bl.holders) == 0 || len(bl.holders) >= maxDupHolders || holds(bl, s.pe.id) ||
				s.pe.refusedLately(p.key(u.piece, b), p.clock) {
				continue
			}
			if s.sooner(bl, p.key(u.piece, b)) && !p.isSolo(u.piece) {
				p.stats.dupLate++
				s.dup(pa, b)
			}
		}
	}
}

// sooner reports whether pe should duplicate bl: its holders are late
// (past their expected arrival; a late holder is assumed to take as long
// again) and pe would beat that, or pe would deliver in less than half the
// time the holders are still expected to take (a slow or deeply queued
// holder). Duplicating blocks that are merely queued a little would only
// waste bandwidth.
func (s *selection) sooner(bl *block, k int64) bool {
	if s.newHolderDelivering(bl) {
		return false
	}
	mine := s.t + s.pe.estNanos(s.p.blk) + dupMargin
	if s.t > bl.eta+dupMargin {
		return mine < s.t+(s.t-bl.reqAt) && !s.holderDelivering(bl, k, mine)
	}
	return s.t+2*(mine-s.t) < bl.eta
}

// holderDelivering reports whether a holder of bl (block key k), though
// past its estimate, is still delivering and should have served bl by
// mine at the rate it is going: it sent a block recently, and what it was
// asked before bl, at its measured rate, takes less. A rate-capped remote
// (libtorrent's limiter hands out its quota in bursts) runs past estimates
// all the time; a duplicate of a block it is about to send only halves
// what it serves.
func (s *selection) holderDelivering(bl *block, k int64, mine int64) bool {
	for _, id := range bl.holders {
		h := s.p.peer(id)
		if h == nil || h.nRate == 0 {
			continue
		}
		o, ok := h.out[k]
		if !ok {
			continue
		}
		blkNanos := int64(float64(s.p.blk) / h.rate * 1e9)
		if s.t-h.lastRecv > max(int64(holderStall), 4*blkNanos) {
			continue // stalled
		}
		var ahead int64
		for k2, o2 := range h.out {
			if o2.at < o.at || o2.at == o.at && k2 <= k {
				ahead += o2.length
			}
		}
		if s.t+int64(float64(ahead)/h.rate*1e9) <= mine {
			return true
		}
	}
	return false
}

// newHolderDelivering reports whether a holder of bl has no measured rate
// yet but is delivering: it sent a block within holderStall, or was asked
// less than holderStall ago. Its blocks' arrival estimates come from the
// prior (256 KiB/s before any peer is measured), so a peer measured since
// would find it slow and duplicate its whole queue: wasted bandwidth, as a
// remote peer sends what it has read for us, CANCEL or not.
func (s *selection) newHolderDelivering(bl *block) bool {
	for _, id := range bl.holders {
		h := s.p.peer(id)
		if h == nil || h.told || h.nRate > 0 {
			continue
		}
		if s.t-max(h.lastRecv, bl.reqAt) < int64(holderStall) {
			return true
		}
	}
	return false
}

func holds(bl *block, id PeerID) bool {
	for _, h := range bl.holders {
		if h == id {
			return true
		}
	}
	return false
}

// windows serves readahead windows, all readers merged by deadline.
func (s *selection) windows() {
	p := s.p
	type cur struct {
		r    *reader
		sp   span
		next int // next free piece for pe, or -1
	}
	var cs []cur
	for _, r := range p.active {
		sp := p.windowSpan(r)
		if sp.empty() {
			continue
		}
		if s.gate > 0 {
			rate := r.rate
			if rate <= 0 {
				rate = defReadRate
			}
			off := r.pos + int64(rate*float64(s.gate-r.lastRead)/1e9)
			if off >= r.end {
				continue
			}
			sp.first = max(sp.first, p.pieceOf(off))
		}
		c := cur{r: r, sp: sp, next: s.nextFree(sp.first, sp.last)}
		if c.next >= 0 {
			cs = append(cs, c)
		}
	}
	for !s.full() && len(cs) > 0 {
		bi, bd := -1, int64(0)
		for i := range cs {
			if d := p.deadline(cs[i].r, cs[i].next); bi < 0 || d < bd {
				bi, bd = i, d
			}
		}
		c := &cs[bi]
		if bd < s.t+s.pe.estNanos(p.pieceLen) {
			// Due before the peer's queue drains: keep background out of
			// its way, and take back queued background beyond a little.
			s.tight = true
			if !s.preempted && float64(s.pe.coldBytes) > s.pe.rateOrDefault()*urgentQueueTime {
				s.preempted = true
				p.preemptPeer(s.pe, -1, true)
			}
		}
		room := s.room()
		if room <= 0 {
			return
		}
		if n := s.take(c.next, min(room, s.spreadCap(c.next)), true); n == room && !p.busy.get(c.next) {
			return // pe took all it may
		}
		c.next = s.nextFree(c.next+1, c.sp.last)
		if c.next < 0 {
			cs[bi] = cs[len(cs)-1]
			cs = cs[:len(cs)-1]
		}
	}
}

// inOrderReach bounds how many bytes an in-order source (SetPeerInOrder)
// would read past to reach a media reader's head or tail: such a source
// reads, and throws away, every byte of a file before the piece asked for
// (a web seed that ignores Range), so a big file's tail, where a container
// keeps its index, goes to it only when a read asks for it.
const inOrderReach = 4 << 20

// inOrderCost is about how many bytes pe, an in-order source, reads and
// throws away before it reaches piece i of r's file: from where its stream
// stands when that is at or before i, in r's file or in the earlier file
// the piece begins in; else from the start of r's file. A piece that begins
// in an earlier file the stream is not in costs that file's whole length,
// which the picker does not know: the most.
func (s *selection) inOrderCost(r *reader, i int) int64 {
	pl, at := s.p.pieceLen, int64(i)*s.p.pieceLen
	from := int64(s.pe.inOrder) * pl
	switch {
	case from <= at && (from >= r.start || at < r.start):
		return at - from
	case at >= r.start:
		return at - r.start
	default:
		return math.MaxInt64
	}
}

func (s *selection) headTail() {
	p := s.p
	for _, r := range p.active {
		for _, sp := range r.ht {
			for !sp.empty() && !s.full() {
				i := s.nextFree(sp.first, sp.last)
				if i < 0 {
					break
				}
				if s.pe.inOrder >= 0 && s.inOrderCost(r, i) > inOrderReach {
					sp.first = i + 1
					continue // other sources', or a read's
				}
				room := s.room()
				if room <= 0 {
					return
				}
				if n := s.take(i, min(room, s.spreadCap(i)), true); n == room && !p.busy.get(i) {
					return
				}
				sp.first = i + 1
			}
		}
	}
}

// spreadCap is how many more blocks of readahead piece pe may take: its
// share when every unchoked peer takes part (at least spreadMin), less
// what it holds. A peer taking whole pieces from a window completes them
// all at once, each at one peer's rate (half a second from a 2 MB/s
// seeder); shared, they complete one after the other in the order the
// reader needs them. A peer that comes back for more as its blocks arrive
// takes more: the faster peers end up with the larger parts.
func (s *selection) spreadCap(piece int) int {
	p := s.p
	per := max(spreadMin, (p.numBlocks(piece)+max(p.rank.unchoked, 1)-1)/max(p.rank.unchoked, 1))
	if pa := p.partOf(piece); pa != nil {
		per -= pa.heldCount(s.pe.id)
	}
	return max(per, 0)
}

// nextFree is the first piece in [from, to] that pe has, with unrequested
// blocks, not under a pending read (urgent pieces are spread by share, not
// filled by whoever asks), or -1.
func (s *selection) nextFree(from, to int) int {
	for {
		i := nextFree(s.p.busy, s.pe.has, from, to)
		if i < 0 || !s.p.isUrgent(i) && !s.leave(i) {
			return i
		}
		from = i + 1
	}
}

// leave reports whether pe, a seed, should leave piece to a partial peer
// that has it: a seed (in a fleet, the origin) has every piece, so its
// upload is best spent on the pieces nobody else can give. A partial peer
// counts when it unchokes us, is not far slower than pe (partnerFactor)
// and has room in its queue; when every such peer is busy, the seed takes
// the piece after all. Readers' urgent pieces are never left: they are
// shared among all peers that have them.
func (s *selection) leave(piece int) bool {
	if !s.pe.seed || s.p.strategy != stratStreaming {
		return false
	}
	if !s.partnersOK {
		s.partnersOK = true
		p := s.p
		for _, o := range p.peers {
			if o.seed || o.choked || o.rateOrDefault()*partnerFactor < s.pe.rateOrDefault() {
				continue
			}
			if len(o.out) < max(4, int(o.rateOrDefault()*queueTime/float64(p.blk))) {
				s.partners = append(s.partners, o)
			}
		}
	}
	for _, o := range s.partners {
		if o.has.get(piece) {
			return true
		}
	}
	return false
}

// avoid reports whether a slow peer must leave piece to faster ones.
func (s *selection) avoid(piece int) bool {
	if s.gate == 0 {
		return false
	}
	if s.gated == nil {
		// The window pieces due before the gate, once per Next call.
		s.gated = []span{}
		for _, r := range s.p.readers {
			sp := s.p.windowSpan(r)
			if sp.empty() {
				continue
			}
			last := sp.first - 1
			for last < sp.last && s.p.deadline(r, last+1) < s.gate {
				last++
			}
			if last >= sp.first {
				s.gated = append(s.gated, span{sp.first, last})
			}
		}
	}
	for _, sp := range s.gated {
		if sp.contains(piece) {
			return true
		}
	}
	return false
}

// background serves the background policy: partial pieces first, then
// new pieces rarest first (or in order, for the sequential baseline).
func (s *selection) background() {
	p := s.p
	for i := 0; i < len(p.open) && !s.full(); {
		pa := p.open[i]
		if !p.wanted.get(pa.piece) || !s.pe.hasPiece(pa.piece) || s.avoid(pa.piece) ||
			p.strategy == stratStreaming && p.isUrgent(pa.piece) || s.leave(pa.piece) {
			i++
			continue
		}
		room := s.room()
		if room <= 0 {
			return
		}
		skips := s.refusedSkips
		s.take(pa.piece, room, false)
		if pa.openPos == i {
			if s.refusedSkips == skips {
				return // still open: pe took all it may
			}
			i++ // what is left pe refused: for others
		}
	}
	for !s.full() {
		if s.room() <= 0 {
			return
		}
		piece := -1
		switch {
		case p.strategy == stratSequential:
			piece = s.lowestNew(0)
		case s.pe.inOrder >= 0:
			piece = s.inOrderNew()
		default:
			piece = s.rarestNew()
		}
		if piece < 0 {
			return
		}
		s.take(piece, s.room(), false)
		if !p.busy.get(piece) {
			return
		}
	}
}

// rarestNew returns the rarest untouched wanted piece pe has, or -1.
func (s *selection) rarestNew() int {
	p, pe := s.p, s.pe
	if !pe.seed && pe.count < sparseScan {
		best, bk := -1, uint8(0)
		// Ties go by the seeded order, as in the full scan: by index,
		// every host of a fleet would ask a peer for the same piece.
		forEach(pe.has, func(i int) {
			if k := p.rar.key[i]; k != 0 && (best < 0 || k < bk || k == bk && p.rar.pos[i] < p.rar.pos[best]) && !s.avoid(i) {
				best, bk = i, k
			}
		})
		return best
	}
	from := p.rar.start[1]
	if !pe.seed {
		from = p.rar.start[2] // pe's own pieces are seen by at least one peer
	}
	left := 0
	for _, pc := range p.rar.order[from:] {
		if !pe.hasPiece(int(pc)) || s.avoid(int(pc)) {
			continue
		}
		if !s.leave(int(pc)) {
			return int(pc)
		}
		if left++; left >= partnerScan {
			return -1 // the partners have plenty to give: let them
		}
	}
	return -1
}

// inOrderNew returns, for a peer that serves pieces best in order
// (SetPeerInOrder), the lowest untouched wanted piece it has from
// pe.inOrder on, wrapping to the start, with rarestNew's exceptions, or -1.
func (s *selection) inOrderNew() int {
	p, from := s.p, s.pe.inOrder
	left := 0
	for _, r := range [2][2]int{{from, p.n - 1}, {0, from - 1}} {
		for i := nextFree(p.busy, s.pe.has, r[0], r[1]); i >= 0; i = nextFree(p.busy, s.pe.has, i+1, r[1]) {
			if p.rar.key[i] == 0 || s.avoid(i) {
				continue
			}
			if !s.leave(i) {
				return i
			}
			if left++; left >= partnerScan {
				return -1 // the partners have plenty to give: let them
			}
		}
	}
	return -1
}

// lowestNew returns the lowest-index untouched wanted piece pe has from
// piece from on, or -1.
func (s *selection) lowestNew(from int) int {
	p := s.p
	for i := nextFree(p.busy, s.pe.has, from, p.n-1); i >= 0; i = nextFree(p.busy, s.pe.has, i+1, p.n-1) {
		if p.rar.key[i] != 0 {
			return i
		}
	}
	return -1
}

// endgame duplicates outstanding blocks once every missing wanted piece
// has been started and none has an unrequested block left.
func (s *selection) endgame() {
	p := s.p
	if len(p.open) > 0 || p.wantedMissing > len(p.parts) || s.full() {
		return
	}
	for _, pa := range p.parts {
		if !p.wanted.get(pa.piece) || !s.pe.hasPiece(pa.piece) {
			continue
		}
		for b := range pa.blocks {
			if s.full() {
				return
			}
			bl := &pa.blocks[b]
			if !bl.recv && len(bl.holders) > 0 && len(bl.holders) < endgameHolders &&
				!holds(bl, s.pe.id) && !s.pe.refusedLately(p.key(pa.piece, b), p.clock) && s.sooner(bl, p.key(pa.piece, b)) && !p.isSolo(pa.piece) {
				p.stats.dupEndgame++
				s.dup(pa, b)
			}
		}
	}
}

// allowedFast serves a choked peer from its allowed-fast pieces.
func (s *selection) allowedFast() {
	p := s.p
	for _, i := range s.pe.fast {
		if s.full() {
			return
		}
		if p.busy.get(i) || !s.pe.hasPiece(i) {
			continue
		}
		if p.isUrgent(i) || p.Pinned(i) || (p.policy == All || p.strategy != stratStreaming) && p.wanted.get(i) {
			s.take(i, s.max-len(s.out), false)
		}
	}
}
