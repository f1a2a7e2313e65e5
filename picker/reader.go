package picker

import (
	"cmp"
	"slices"
	"time"
)

// Reader tuning. See doc.go for the reasoning.
const (
	maxPending  = 64        // pending reads remembered per reader
	minEvidence = 256 << 10 // sequential bytes before a window opens
	minReads    = 2         // sequential reads before a window opens
	backSlack   = 1 << 20   // a read this far behind the position is not a seek
	fwdSlack    = 1 << 20   // nor this far ahead (or within the window)
	leadTime    = 10 * time.Second
	rateEvery   = int64(time.Second)
	defReadRate = 4 << 20 // bytes/s assumed before a read rate is measured
)

// HeadTailSize is how much of each end of a media file a reader asks for at
// open (ReaderOptions.Media): a file at most twice as long is asked for
// whole.
const HeadTailSize = 1 << 20

// ReaderOptions describe one open file.
type ReaderOptions struct {
	Start, End int64 // the file's byte range within the torrent
	Media      bool  // prefetch the head and tail (container indexes) at open
}

type reader struct {
	id         ReaderID
	start, end int64
	ht         [2]span // head and tail piece spans; empty when not granted
	htBytes    int64
	pending    []pendingRead

	hasPos   bool
	pos      int64 // end of the last sequential read
	seq      int64 // sequential bytes since the last seek
	reads    int   // reads since the last seek
	lastRead int64
	rate     float64 // measured sequential read rate, bytes/s; 0 unknown
	rateAt   int64
	rateAcc  int64
	target   int64 // wanted window bytes; the budget may grant less
	proven   bool  // has read sequentially before: a player, not a scanner
	media    bool  // ReaderOptions.Media
}

type pendingRead struct {
	off   int64
	n     int
	at    int64
	first bool // the first read after an open or a seek
}

// span is an inclusive piece range; first > last means empty.
type span struct{ first, last int }

func (s span) empty() bool         { return s.first > s.last }
func (s span) contains(i int) bool { return i >= s.first && i <= s.last }

type urgentEntry struct {
	piece int
	at    int64
	first bool
}

// AddReader registers an open file handle covering torrent bytes
// [opts.Start, opts.End). A media reader also asks for the file's head and
// tail at once, within a quarter of MaxWindowBytes across all readers.
func (p *Picker) AddReader(opts ReaderOptions, now time.Time) ReaderID {
	p.tick(now)
	t := p.ts(now)
	p.lastWant = p.clock
	start := min(max(opts.Start, 0), p.total)
	end := min(max(opts.End, start), p.total)
	r := &reader{id: p.nextReader, start: start, end: end, lastRead: t, media: opts.Media}
	r.ht[0], r.ht[1] = span{1, 0}, span{1, 0}
	p.nextReader++
	if opts.Media && end > start && p.n > 0 {
		hs := max(int64(HeadTailSize), 1)
		if end-start <= 2*hs {
			r.ht[0] = span{p.pieceOf(start), p.pieceOf(end - 1)}
		} else {
			r.ht[0] = span{p.pieceOf(start), p.pieceOf(start + hs - 1)}
			r.ht[1] = span{p.pieceOf(end - hs), p.pieceOf(end - 1)}
			if r.ht[1].first <= r.ht[0].last {
				r.ht[0].last, r.ht[1] = r.ht[1].last, span{1, 0}
			}
		}
		var need int64
		for _, s := range r.ht {
			if !s.empty() {
				need += int64(s.last-s.first+1) * p.pieceLen
			}
		}
		if p.headTailUsed+need <= p.maxWindow/4 {
			r.htBytes = need
			p.headTailUsed += need
		} else {
			r.ht[0], r.ht[1] = span{1, 0}, span{1, 0}
		}
	}
	p.readerIdx[r.id] = len(p.readers)
	p.readers = append(p.readers, r)
	p.pinVersion++
	p.updateActive(r)
	return r.id
}

// HeadTail returns the pieces of the head and tail a media reader was
// granted at AddReader (ascending; a piece in both is listed once), or nil
// if it was not granted them (not media, or the quarter of MaxWindowBytes
// that heads and tails share was taken) or has been removed.
func (p *Picker) HeadTail(id ReaderID) []int {
	r := p.reader(id)
	if r == nil {
		return nil
	}
	var pieces []int
	for _, s := range r.ht {
		for i := s.first; i <= s.last; i++ {
			if len(pieces) == 0 || pieces[len(pieces)-1] < i {
				pieces = append(pieces, i)
			}
		}
	}
	return pieces
}

func (p *Picker) reader(id ReaderID) *reader {
	if i, ok := p.readerIdx[id]; ok {
		return p.readers[i]
	}
	return nil
}

// RemoveReader forgets a closed file handle and releases its pins at once.
func (p *Picker) RemoveReader(id ReaderID) {
	r := p.reader(id)
	if r == nil {
		return
	}
	p.headTailUsed -= r.htBytes
	r.htBytes = 0
	p.setTarget(r, 0)
	p.updateActive(r)
	i := p.readerIdx[id]
	copy(p.readers[i:], p.readers[i+1:])
	p.readers = p.readers[:len(p.readers)-1]
	for j := i; j < len(p.readers); j++ {
		p.readerIdx[p.readers[j].id] = j
	}
	delete(p.readerIdx, id)
	p.urgentDirty = true
	p.pinVersion++
	p.reclassify()
	p.releaseUnwanted()
}

// ReaderRead records a read of n bytes at torrent offset off. Its pieces
// are urgent until they arrive; a read continuing the previous ones is
// evidence of sequential reading and grows the window; any other read is
// a seek, which releases the old window at once (a proven reader restarts
// from one piece at the new position, a scanner from none). A media
// reader's seek past its head and tail proves it: a player.
func (p *Picker) ReaderRead(id ReaderID, off int64, n int, now time.Time) {
	p.tick(now)
	r := p.reader(id)
	if r == nil || n <= 0 || off < 0 || off >= p.total {
		return
	}
	t := p.ts(now)
	p.lastWant = p.clock
	n = int(min(int64(n), p.total-off))
	end := off + int64(n)
	var fresh []int // missing pieces this read makes urgent
	for i := p.pieceOf(off); i <= p.pieceOf(end-1); i++ {
		if !p.have.get(i) && !p.isUrgent(i) {
			fresh = append(fresh, i)
		}
	}
	seek := !r.hasPos || off < r.pos-backSlack || off > r.pos+max(p.windowOf(r), fwdSlack)
	if len(r.pending) >= maxPending {
		r.pending = r.pending[1:]
	}
	r.pending = append(r.pending, pendingRead{off: off, n: n, at: t, first: seek})
	p.urgentDirty = true
	p.pinVersion++

	if seek {
		hadWindow := r.target > 0
		if r.media && off >= r.start+HeadTailSize && end <= r.end-HeadTailSize {
			// A media file read away from its head and tail, where
			// scanners and probes stop: a player seeking, which goes
			// on playing. Its next piece should be on its way behind
			// the urgent ones, not wait for two more reads' evidence.
			r.proven = true
		}
		r.hasPos, r.pos, r.seq, r.reads = true, end, int64(n), 1
		r.rateAt, r.rateAcc = t, int64(n)
		p.setTarget(r, p.targetFor(r, t))
		if hadWindow {
			p.reclassify()
			p.releaseUnwanted()
		}
	} else {
		r.reads++
		if end > r.pos {
			r.seq += end - r.pos
			r.rateAcc += end - r.pos
			r.pos = end
		}
		if dt := t - r.rateAt; dt >= rateEvery {
			inst := float64(r.rateAcc) / (float64(dt) / 1e9)
			if r.rate == 0 {
				r.rate = inst
			} else {
				r.rate += 0.5 * (inst - r.rate)
			}
			r.rateAt, r.rateAcc = t, 0
		}
		p.setTarget(r, p.targetFor(r, t))
	}
	r.lastRead = t
	for _, i := range fresh {
		// Requested or not, its blocks must not wait behind background
		// work in the peers' queues.
		p.preemptFor(i)
	}
}

// ReaderDone records that a read returned: its pieces no longer block.
func (p *Picker) ReaderDone(id ReaderID, off int64, n int) {
	r := p.reader(id)
	if r == nil {
		return
	}
	i := slices.IndexFunc(r.pending, func(pr pendingRead) bool { return pr.off == off && pr.n == n })
	if i < 0 {
		i = slices.IndexFunc(r.pending, func(pr pendingRead) bool { return pr.off == off })
	}
	if i >= 0 {
		r.pending = slices.Delete(r.pending, i, i+1)
		p.urgentDirty = true
		p.pinVersion++
	}
}

// targetFor sizes r's window: enough for leadTime of reading at the
// measured rate plus two pieces' download time, at least two pieces, and
// never more than twice what the reader has read sequentially (evidence).
//
// A reader that has shown sequential reading before keeps that evidence
// across seeks: after a seek it restarts from a one-piece window instead of
// none, because a player that seeks goes on playing. A scanner never earns
// a window at all.
func (p *Picker) targetFor(r *reader, t int64) int64 {
	if !r.proven && (r.reads < minReads || r.seq < minEvidence) {
		return 0
	}
	r.proven = true
	rate := r.rate
	if rate == 0 {
		if dt := t - r.rateAt; dt >= int64(100*time.Millisecond) {
			rate = float64(r.rateAcc) / (float64(dt) / 1e9)
		} else {
			rate = p.swarmRateNow()
		}
	}
	lead := leadTime.Seconds() + 2*float64(p.pieceLen)/p.swarmRateNow()
	w := max(int64(rate*lead), 2*p.pieceLen)
	return min(w, max(2*r.seq, p.pieceLen), p.maxWindow)
}

func (p *Picker) setTarget(r *reader, w int64) {
	if w != r.target {
		p.sumTarget += w - r.target
		r.target = w
		p.pinVersion++
		p.updateActive(r)
	}
}

// updateActive keeps p.active, the readers with a window or a head/tail
// (in opening order), so Next does not walk idle handles: a library scan
// may hold thousands open.
func (p *Picker) updateActive(r *reader) {
	want := r.target > 0 || r.htBytes > 0
	i := slices.Index(p.active, r)
	switch {
	case want && i < 0:
		j, _ := slices.BinarySearchFunc(p.active, r.id, func(a *reader, id ReaderID) int { return cmp.Compare(a.id, id) })
		p.active = slices.Insert(p.active, j, r)
	case !want && i >= 0:
		p.active = slices.Delete(p.active, i, i+1)
	}
}

// windowOf is r's granted window: its target, scaled down with every other
// window when the targets together exceed the budget.
func (p *Picker) windowOf(r *reader) int64 {
	budget := p.maxWindow - p.headTailUsed
	if p.sumTarget <= budget || p.sumTarget == 0 {
		return r.target
	}
	return int64(float64(r.target) * float64(max(budget, 0)) / float64(p.sumTarget))
}

// windowSpan is the pieces of r's window, from the piece under its position.
func (p *Picker) windowSpan(r *reader) span {
	w := p.windowOf(r)
	if w <= 0 || r.pos >= r.end {
		return span{1, 0}
	}
	return span{p.pieceOf(r.pos), p.pieceOf(min(r.pos+w, r.end) - 1)}
}

// deadline is when r will reach piece i at its read rate.
func (p *Picker) deadline(r *reader, i int) int64 {
	rate := r.rate
	if rate <= 0 {
		rate = defReadRate
	}
	d := max(int64(i)*p.pieceLen-r.pos, 0)
	return r.lastRead + int64(float64(d)/rate*1e9)
}

// rebuildUrgent lists the pieces under pending reads, oldest read first,
// and marks them in urgentSet.
func (p *Picker) rebuildUrgent() {
	p.urgentDirty = false
	for _, u := range p.urgent {
		p.urgentSet.clear(u.piece)
	}
	u := p.urgent[:0]
	for _, r := range p.readers {
		for _, pr := range r.pending {
			for i := p.pieceOf(pr.off); i <= p.pieceOf(pr.off+int64(pr.n)-1); i++ {
				if !p.have.get(i) {
					u = append(u, urgentEntry{piece: i, at: pr.at, first: pr.first})
				}
			}
		}
	}
	slices.SortFunc(u, func(a, b urgentEntry) int { return cmp.Or(cmp.Compare(a.piece, b.piece), urgentOrder(a, b)) })
	u = slices.CompactFunc(u, func(a, b urgentEntry) bool { return a.piece == b.piece })
	slices.SortFunc(u, func(a, b urgentEntry) int { return cmp.Or(urgentOrder(a, b), cmp.Compare(a.piece, b.piece)) })
	clear(p.urgentIdx)
	for i, e := range u {
		p.urgentSet.set(e.piece)
		p.urgentIdx[e.piece] = int32(i)
	}
	p.urgent = u
}

// urgentOrder ranks urgent pieces: first reads after an open or a seek
// before the rest (someone is staring at a frozen player; a cp blocked at
// the download frontier loses little by waiting a moment), then the oldest
// read first.
func urgentOrder(a, b urgentEntry) int {
	if a.first != b.first {
		if a.first {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.at, b.at)
}

// Urgent reports whether piece is missing and a pending read waits for it.
func (p *Picker) Urgent(piece int) bool {
	return p.validPiece(piece) && p.isUrgent(piece)
}

// isUrgent reports whether piece is under a pending read and missing.
func (p *Picker) isUrgent(piece int) bool {
	if p.urgentDirty {
		p.rebuildUrgent()
	}
	return p.urgentSet.get(piece)
}

// UrgentUnasked reports whether a pending read waits for a piece that peer
// id has and of which some block is asked of nobody. A source that takes
// work in large units and is full (a web seed with every connection busy
// on background or old-window runs) ends one of them when this holds, so
// that its next Next gives it the urgent piece.
func (p *Picker) UrgentUnasked(id PeerID) bool {
	pe := p.peer(id)
	if pe == nil || pe.choked {
		return false
	}
	if p.urgentDirty {
		p.rebuildUrgent()
	}
	return p.urgentUnaskedFor(pe)
}

// urgentUnaskedFor reports whether a piece under a pending read that pe
// has still has blocks asked of nobody.
func (p *Picker) urgentUnaskedFor(pe *peer) bool {
	for _, u := range p.urgent {
		if !p.busy.get(u.piece) && pe.hasPiece(u.piece) {
			return true
		}
	}
	return false
}

// hot returns the pinned set as a bitset, rebuilt when readers changed
// (cost: the words between the lowest and highest pin, plus the pins).
func (p *Picker) hot() bitset {
	if p.hotVer == p.pinVersion {
		return p.hotSet
	}
	p.hotVer = p.pinVersion
	if p.hotLo <= p.hotHi {
		clear(p.hotSet[p.hotLo>>6 : p.hotHi>>6+1])
	}
	p.hotLo, p.hotHi = p.n, -1
	add := func(s span) {
		if s.empty() {
			return
		}
		p.hotLo, p.hotHi = min(p.hotLo, s.first), max(p.hotHi, s.last)
		for i := s.first; i <= s.last; i++ {
			p.hotSet.set(i)
		}
	}
	for _, r := range p.readers {
		add(p.windowSpan(r))
		add(r.ht[0])
		add(r.ht[1])
		for _, pr := range r.pending {
			add(span{p.pieceOf(pr.off), p.pieceOf(pr.off + int64(pr.n) - 1)})
		}
	}
	return p.hotSet
}

// Pinned reports whether piece is under a pending read, in a readahead
// window or in a granted head/tail: the cache must not evict it.
func (p *Picker) Pinned(piece int) bool {
	return p.validPiece(piece) && p.hot().get(piece)
}

// PinnedPieces lists the pinned pieces in increasing order. Its size is
// bounded by MaxWindowBytes plus the pending reads.
func (p *Picker) PinnedPieces() []int {
	h := p.hot()
	var out []int
	if p.hotLo <= p.hotHi {
		forEach(h[p.hotLo>>6:p.hotHi>>6+1], func(i int) { out = append(out, i+p.hotLo&^63) })
	}
	return out
}

// PinVersion changes whenever the pinned set may have changed, so an
// engine can skip re-syncing cache pins when it has not.
func (p *Picker) PinVersion() uint64 { return p.pinVersion }

// readersWantFrom reports whether pe has a missing piece some reader wants.
func (p *Picker) readersWantFrom(pe *peer) bool {
	if p.strategy != stratStreaming || p.n == 0 {
		return false
	}
	h := p.hot()
	for w := max(p.hotLo, 0) >> 6; w <= p.hotHi>>6; w++ {
		x := h[w] &^ p.have[w]
		if !pe.seed {
			x &= pe.has[w]
		}
		if x != 0 {
			return true
		}
	}
	return false
}

// EarliestDeadline returns the soonest moment a reader needs a piece that
// is still missing: the time of the oldest pending read on a missing piece,
// else the earliest window deadline. ok is false when no reader waits. An
// engine serving several torrents can give bandwidth to the one whose
// readers need data first.
func (p *Picker) EarliestDeadline() (deadline time.Time, ok bool) {
	if p.urgentDirty {
		p.rebuildUrgent()
	}
	best := int64(0)
	for _, u := range p.urgent {
		if !p.have.get(u.piece) && (!ok || u.at < best) {
			best, ok = u.at, true
		}
	}
	if !ok {
		for _, r := range p.active {
			sp := p.windowSpan(r)
			if sp.empty() {
				continue
			}
			if i := nextFree(p.have, nil, sp.first, sp.last); i >= 0 {
				if d := p.deadline(r, i); !ok || d < best {
					best, ok = d, true
				}
			}
		}
	}
	if !ok {
		return time.Time{}, false
	}
	return p.epoch.Add(time.Duration(best)), true
}
