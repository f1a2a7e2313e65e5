package picker

// partial is a piece with at least one block requested: which blocks have
// arrived and who holds the rest. Partials leave the rarity order (the
// background finishes them first, from the open list) and return to the
// free list when the piece is verified.
type partial struct {
	piece   int
	blocks  []block
	nRecv   int
	nUnreq  int // neither received nor outstanding
	cursor  int // no unrequested block below this index
	openPos int // index in Picker.open, or -1
	partPos int // index in Picker.parts
}

type block struct {
	recv    bool
	holders []PeerID // peers with this block outstanding (more than one: duplicated)
	reqAt   int64    // when it was last requested
	eta     int64    // expected arrival from its first holder
}

func (p *Picker) partOf(piece int) *partial {
	if i := p.pidx[piece]; i >= 0 {
		return p.parts[i]
	}
	return nil
}

// startPart turns piece into a partial.
func (p *Picker) startPart(piece int) *partial {
	var pa *partial
	if k := len(p.free); k > 0 {
		pa = p.free[k-1]
		p.free = p.free[:k-1]
	} else {
		pa = &partial{}
	}
	nb := p.numBlocks(piece)
	if cap(pa.blocks) < nb {
		pa.blocks = make([]block, nb)
	}
	pa.blocks = pa.blocks[:nb]
	pa.piece = piece
	pa.openPos = -1
	pa.reset()
	pa.partPos = len(p.parts)
	p.parts = append(p.parts, pa)
	p.pidx[piece] = int32(pa.partPos)
	p.rar.setKey(piece, 0)
	p.updatePart(pa)
	return pa
}

// reset forgets what arrived; outstanding requests stay outstanding.
func (pa *partial) reset() {
	pa.nRecv, pa.nUnreq, pa.cursor = 0, 0, 0
	for i := range pa.blocks {
		b := &pa.blocks[i]
		b.recv = false
		if len(b.holders) == 0 {
			pa.nUnreq++
		}
	}
}

// dropPart forgets a partial whose piece is verified (or must start over).
func (p *Picker) dropPart(pa *partial) {
	p.setOpen(pa, false)
	last := p.parts[len(p.parts)-1]
	p.parts[pa.partPos] = last
	last.partPos = pa.partPos
	p.pidx[last.piece] = int32(last.partPos)
	p.parts = p.parts[:len(p.parts)-1]
	p.pidx[pa.piece] = -1
	for i := range pa.blocks {
		pa.blocks[i] = block{holders: pa.blocks[i].holders[:0]}
	}
	if len(p.free) < 256 {
		p.free = append(p.free, pa)
	}
}

// updatePart keeps the busy bit and the open list in step with nUnreq.
func (p *Picker) updatePart(pa *partial) {
	if pa.nUnreq > 0 {
		p.busy.clear(pa.piece)
		p.setOpen(pa, true)
	} else {
		p.busy.set(pa.piece)
		p.setOpen(pa, false)
	}
}

func (p *Picker) setOpen(pa *partial, open bool) {
	switch {
	case open && pa.openPos < 0:
		pa.openPos = len(p.open)
		p.open = append(p.open, pa)
	case !open && pa.openPos >= 0:
		last := p.open[len(p.open)-1]
		p.open[pa.openPos] = last
		last.openPos = pa.openPos
		p.open = p.open[:len(p.open)-1]
		pa.openPos = -1
	}
}

// nextUnreq returns the first unrequested block at or after from, or -1.
func (pa *partial) nextUnreq(from int) int {
	for i := max(from, pa.cursor); i < len(pa.blocks); i++ {
		b := &pa.blocks[i]
		if !b.recv && len(b.holders) == 0 {
			return i
		}
	}
	return -1
}

// addHolder records that pe was asked for block b of pa at t.
func (p *Picker) addHolder(pa *partial, b int, pe *peer, t int64, hot bool) Request {
	bl := &pa.blocks[b]
	if len(bl.holders) == 0 {
		pa.nUnreq--
		if b == pa.cursor {
			pa.cursor++
		}
	}
	r := p.blockReq(pa.piece, b)
	eta := t + pe.estNanos(int64(r.Length))
	if len(bl.holders) == 0 || eta < bl.eta {
		bl.eta = eta
	}
	bl.reqAt = t
	bl.holders = append(bl.holders, pe.id)
	pe.addOut(p.key(pa.piece, b), t, eta, int64(r.Length), hot)
	if pa.nUnreq == 0 {
		p.updatePart(pa)
	}
	return r
}

// removeHolder forgets that id holds block b of pa; the block becomes
// requestable again when nobody else holds it. It does not touch the
// peer's own bookkeeping.
func (p *Picker) removeHolder(pa *partial, b int, id PeerID) {
	bl := &pa.blocks[b]
	for i, h := range bl.holders {
		if h == id {
			bl.holders = append(bl.holders[:i], bl.holders[i+1:]...)
			if len(bl.holders) == 0 && !bl.recv {
				pa.nUnreq++
				pa.cursor = min(pa.cursor, b)
				if pa.nUnreq == 1 {
					p.updatePart(pa)
				}
			}
			return
		}
	}
}

// withdrawAll takes back every outstanding request on pa and queues
// cancels for them.
func (p *Picker) withdrawAll(pa *partial) {
	for b := range pa.blocks {
		bl := &pa.blocks[b]
		for len(bl.holders) > 0 {
			id := bl.holders[0]
			p.withdraw(id, pa, b, true)
		}
	}
}

// withdraw takes back id's request for block b of pa; with cancel, the
// engine is told to send CANCEL.
func (p *Picker) withdraw(id PeerID, pa *partial, b int, cancel bool) {
	p.removeHolder(pa, b, id)
	if pe := p.peer(id); pe != nil {
		k := p.key(pa.piece, b)
		pe.removeOut(k)
		if cancel {
			pe.noteCancelled(k)
		}
	}
	if cancel {
		p.cancels = append(p.cancels, PeerRequest{Peer: id, Request: p.blockReq(pa.piece, b)})
	}
}

// heldCount is how many blocks of pa id holds.
func (pa *partial) heldCount(id PeerID) int {
	n := 0
	for i := range pa.blocks {
		if holds(&pa.blocks[i], id) {
			n++
		}
	}
	return n
}

// heldBy reports whether id holds any block of pa.
func (pa *partial) heldBy(id PeerID) bool {
	for i := range pa.blocks {
		if holds(&pa.blocks[i], id) {
			return true
		}
	}
	return false
}
