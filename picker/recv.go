package picker

import (
	"cmp"
	"slices"
	"time"
)

// Timeout bounds for one request: a multiple of its expected wait.
const (
	minTimeout = 2 * time.Second
	maxTimeout = 60 * time.Second
)

// BlockReceived records a block from the peer. useful is false when the
// block was not asked of this peer (or was withdrawn long ago) or is
// already here: the engine discards it. cancels lists the same block still
// outstanding on other peers: the engine sends CANCEL for each; the picker
// has already forgotten them.
func (p *Picker) BlockReceived(id PeerID, r Request, now time.Time) (cancels []PeerRequest, useful bool) {
	p.tick(now)
	t := p.ts(now)
	b, ok := p.blockOf(r)
	if !ok {
		return nil, false
	}
	k := p.key(r.Piece, b)
	pe := p.peer(id)
	var o outReq
	var asked bool
	if pe != nil {
		o, asked = pe.removeOut(k)
		if asked {
			pe.sample(o, t)
		}
	}
	pa := p.partOf(r.Piece)
	if p.have.get(r.Piece) || pa == nil {
		return nil, false
	}
	bl := &pa.blocks[b]
	if asked {
		p.removeHolder(pa, b, id)
	}
	if bl.recv || !asked && (pe == nil || !pe.wasCancelled(k)) {
		return nil, false
	}
	cancels = p.receive(pa, b, r, nil)
	if pa.nUnreq == 0 {
		p.updatePart(pa)
	}
	return cancels, true
}

// receive marks block b of pa (request r) received and withdraws it from
// the peers that still hold it, appending a cancel for each to cancels.
// The caller updates pa's standing (updatePart).
func (p *Picker) receive(pa *partial, b int, r Request, cancels []PeerRequest) []PeerRequest {
	bl := &pa.blocks[b]
	// Mark it received before dropping the other holders so the block does
	// not flicker back to requestable.
	if len(bl.holders) == 0 {
		pa.nUnreq--
	}
	bl.recv = true
	pa.nRecv++
	k := p.key(pa.piece, b)
	for len(bl.holders) > 0 {
		h := bl.holders[0]
		bl.holders = bl.holders[1:]
		if hp := p.peer(h); hp != nil {
			hp.removeOut(k)
			hp.noteCancelled(k)
		}
		cancels = append(cancels, PeerRequest{Peer: h, Request: r})
	}
	return cancels
}

// PieceArrived records that the peer delivered the whole of piece at once
// (a web seed, which fetches whole pieces whatever share of their blocks it
// was asked for; the engine checks the piece as one). Every block not here
// yet counts as received from it, so the piece waits for
// nothing the picker asked of others: their requests for it are withdrawn
// and returned as cancels. ok is false when the piece is here already, or
// every block of it had arrived before (a copy of it is being checked or
// stored): the engine discards this one. Until SetHave or PieceFailed the
// piece is requested by nobody, as after its last BlockReceived.
func (p *Picker) PieceArrived(id PeerID, piece int, now time.Time) (cancels []PeerRequest, ok bool) {
	if !p.validPiece(piece) || p.have.get(piece) {
		return nil, false
	}
	p.tick(now)
	t := p.ts(now)
	pa := p.partOf(piece)
	if pa == nil {
		pa = p.startPart(piece)
	}
	if pa.nRecv == len(pa.blocks) {
		return nil, false
	}
	pe := p.peer(id)
	for b := range pa.blocks {
		if pe != nil {
			if o, asked := pe.removeOut(p.key(piece, b)); asked {
				pe.sample(o, t)
				p.removeHolder(pa, b, id)
			}
		}
		if !pa.blocks[b].recv {
			cancels = p.receive(pa, b, p.blockReq(piece, b), cancels)
		}
	}
	p.updatePart(pa)
	return cancels, true
}

// RequestRejected records a REJECT REQUEST (BEP 6): the block is
// requestable again, from other peers at once and from this one after
// rejectBackoff.
func (p *Picker) RequestRejected(id PeerID, r Request) {
	p.giveBack(id, r, true)
}

// RequestReturned gives back a request that id will not serve after all,
// though it could: a source that fetches in runs (a web seed) returns what
// did not fit in a run, or what a run cut short did not fetch. Unlike a
// rejected one, the block may be asked of id again at once: a web seed
// that is a torrent's only source must not wait rejectBackoff for the
// blocks it handed back.
func (p *Picker) RequestReturned(id PeerID, r Request) {
	p.giveBack(id, r, false)
}

func (p *Picker) giveBack(id PeerID, r Request, refused bool) {
	pe := p.peer(id)
	b, ok := p.blockOf(r)
	if pe == nil || !ok {
		return
	}
	k := p.key(r.Piece, b)
	if _, ok := pe.removeOut(k); ok {
		if pa := p.partOf(r.Piece); pa != nil {
			p.removeHolder(pa, b, id)
		}
		if refused {
			pe.noteRejected(k, p.clock)
		}
	}
}

// Timeouts returns requests to cancel: those outstanding much longer than
// their peer's expected delivery time (they become requestable elsewhere
// and the peer's rate estimate drops), plus every request the picker has
// withdrawn since the last call (see Cancels). Call it about once a
// second; the engine sends CANCEL for each.
func (p *Picker) Timeouts(now time.Time) []PeerRequest {
	p.tick(now)
	t := p.ts(now)
	var keys []int64
	for _, pe := range p.peers {
		keys = keys[:0]
		for k, o := range pe.out {
			lim := min(max(3*(o.eta-o.at)+int64(time.Second), int64(minTimeout)), int64(maxTimeout))
			if t-o.at > lim {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		slices.Sort(keys)
		for _, k := range keys {
			p.stats.timedOut++
			piece, b := p.unkey(k)
			if pa := p.partOf(piece); pa != nil {
				p.withdraw(pe.id, pa, b, true)
			} else {
				pe.removeOut(k)
				pe.noteCancelled(k)
				p.cancels = append(p.cancels, PeerRequest{Peer: pe.id, Request: p.blockReq(piece, b)})
			}
		}
		if pe.nRate > 0 {
			pe.rate *= 0.5 // snubbed: fewer urgent blocks until it proves itself
		}
	}
	return p.Cancels()
}

// Cancels returns the requests the picker has withdrawn since the last
// call: after a seek or a new urgent read, queued background requests are
// taken back so urgent ones do not wait behind them; after SetHave,
// leftover duplicates. They are already forgotten; the engine sends CANCEL
// for each and then refills the peers' pipelines with Next. Call it after
// ReaderRead, RemoveReader and SetHave (Timeouts also drains it).
func (p *Picker) Cancels() []PeerRequest {
	c := p.cancels
	p.cancels = nil
	return c
}

// preemptFor frees pipeline room for urgent piece: peers that have it give
// back their queued requests for pieces no reader needs, keeping the few
// that are probably already on the wire.
//
// When every block of piece is already requested, only its holders are
// touched: the others are not in its way.
func (p *Picker) preemptFor(piece int) {
	if p.strategy != stratStreaming {
		return
	}
	var pa *partial
	if p.busy.get(piece) {
		pa = p.partOf(piece)
	}
	for _, pe := range p.peers {
		if pe.choked || !pe.hasPiece(piece) || pa != nil && !pa.heldBy(pe.id) {
			continue
		}
		p.preemptPeer(pe, p.urgentRank(piece), true)
	}
}

// urgentRank returns the position of piece in the urgent order, or
// len(urgent) when it is not urgent.
func (p *Picker) urgentRank(piece int) int {
	if p.urgentDirty {
		p.rebuildUrgent()
	}
	if i, ok := p.urgentIdx[piece]; ok && p.urgentSet.get(piece) {
		return int(i)
	}
	return len(p.urgent)
}

// reclassify recomputes which outstanding requests serve a reader, after
// a seek or close changed that. O(outstanding requests).
func (p *Picker) reclassify() {
	for _, pe := range p.peers {
		for k, o := range pe.out {
			piece, _ := p.unkey(k)
			if hot := p.isHot(piece); hot != o.hot {
				o.hot = hot
				pe.out[k] = o
				if hot {
					pe.coldBytes -= o.length
				} else {
					pe.coldBytes += o.length
				}
			}
		}
	}
}

// releaseUnwanted withdraws, under OnlyWanted, queued requests nobody
// wants any more (a seek or close released a window).
func (p *Picker) releaseUnwanted() {
	if p.policy != OnlyWanted || p.strategy != stratStreaming {
		return
	}
	for _, pe := range p.peers {
		p.preemptPeer(pe, -1, false)
	}
}

// preemptGap is the least time between two preemptions of one peer.
const preemptGap = 500 * time.Millisecond

// preemptPeer withdraws pe's queued requests that stand in the way, keeping
// the oldest few (probably on the wire already). For the urgent piece
// ranked rank (see urgentOrder), readahead requests and requests for
// urgent pieces ranked after it go too, if they were asked before the
// peer's first block of that piece: an urgent block must not wait behind
// another reader's window, nor a seek behind a cp blocked at the download
// frontier; they are re-requested right after, behind it. With rank < 0,
// only requests no reader wants go.
//
// paced preemptions of a peer are at least preemptGap apart. A release
// after a seek or a close is not paced: what it withdraws nobody wants, so
// it is not asked again and cannot livelock, and a seek soon after another
// (a user scrubbing) must not leave the window it left queued ahead of
// the new one.
func (p *Picker) preemptPeer(pe *peer, rank int, paced bool) {
	forUrgent := rank >= 0
	if len(pe.out) == 0 || !forUrgent && pe.coldBytes == 0 {
		return
	}
	keep := max(2, int(pe.rateOrDefault()*pe.latOrDefault()/float64(p.blk))+1)
	if len(pe.out) <= keep {
		return
	}
	// At most once per preemptGap per peer: withdrawn blocks are asked
	// again right away, at the back of the peer's queue, and withdrawing
	// them again before a slow peer could serve them livelocked eight
	// random readers on a 2 MB/s seeder (the transfer stopped).
	if paced {
		if pe.lastPreempt != 0 && p.clock-pe.lastPreempt < int64(preemptGap) {
			return
		}
		pe.lastPreempt = p.clock
	}
	type kv struct {
		k  int64
		at int64
	}
	all := make([]kv, 0, len(pe.out))
	for k, o := range pe.out {
		all = append(all, kv{k, o.at})
	}
	slices.SortFunc(all, func(a, b kv) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.k, b.k))
	})
	if p.urgentDirty {
		p.rebuildUrgent()
	}
	// The peer serves requests in order: what it was asked after its first
	// block of the urgent piece is not in that piece's way, and withdrawing
	// it would only have it sent twice (a remote peer sends what it had
	// already read for us, CANCEL or not).
	behind := len(all)
	if forUrgent && rank < len(p.urgent) {
		up := p.urgent[rank].piece
		if i := slices.IndexFunc(all, func(e kv) bool { piece, _ := p.unkey(e.k); return piece == up }); i >= 0 {
			behind = i + 1
		}
	}
	// Newest first, so the oldest withdrawn requests (the likeliest to be
	// on the wire already) stay longest in the peer's cancelled ring.
	kept := all[:0:0]
	for j := len(all) - 1; j >= 0; j-- {
		e := all[j]
		piece, b := p.unkey(e.k)
		if j < keep || j >= behind || forUrgent && p.urgentRank(piece) <= rank || !forUrgent && p.isHot(piece) {
			kept = append(kept, e)
			continue
		}
		if pa := p.partOf(piece); pa != nil {
			p.stats.withdrawn++
			p.withdraw(pe.id, pa, b, true)
		}
	}
	// What stays moved up the peer's queue: refresh its arrival estimates
	// so duplicates are not sent against stale, pessimistic ones.
	t := pe.lastRecv
	var ahead int64
	for j := len(kept) - 1; j >= 0; j-- {
		k := kept[j].k
		o := pe.out[k]
		ahead += o.length
		eta := max(o.at, t) + int64((pe.latOrDefault()+float64(ahead)/pe.rateOrDefault())*1e9)
		if eta < o.eta {
			o.eta = eta
			pe.out[k] = o
			piece, b := p.unkey(k)
			if pa := p.partOf(piece); pa != nil && eta < pa.blocks[b].eta {
				pa.blocks[b].eta = eta
			}
		}
	}
}

// isHot reports whether some reader wants piece now or soon.
func (p *Picker) isHot(piece int) bool {
	return p.isUrgent(piece) || p.hot().get(piece)
}
