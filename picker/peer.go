package picker

import (
	"slices"
	"time"
)

// Per-peer bounds: whatever the engine asks, one peer never holds more
// than this much picker state.
const (
	maxOutPerPeer  = 1024 // outstanding requests
	maxAllowedFast = 64   // BEP 6 allowed-fast pieces remembered
	cancelRing     = 128  // recently withdrawn requests whose late blocks we still accept
)

// rejectBackoff is how long a block a peer refused is not asked of that
// peer again while another unchoked peer has its piece (others may be
// asked at once); rejectBackoffAlone, when none has: a lone source that
// refused a block (a seeder's full request queue) is asked again soon,
// or the read behind it would wait the whole back-off.
const (
	rejectBackoff      = 3 * time.Second
	rejectBackoffAlone = 250 * time.Millisecond
)

// Estimates used before a peer has delivered anything.
const (
	defaultRate = 256 << 10 // bytes/s
	defaultLat  = 150 * time.Millisecond
)

type peer struct {
	id            PeerID
	seed          bool   // has every piece; not counted in avail
	has           bitset // nil when seed
	count         int    // pieces in has
	choked        bool
	fast          []int
	out           map[int64]outReq
	outBytes      int64
	total         *int64 // the picker's outBytes, nil once uncounted (Uncount)
	coldBytes     int64  // outstanding bytes not asked for a reader
	wantedMissing int    // |has ∩ wanted ∩ ¬have| (non-seeds)
	// inOrder: background pieces go lowest first from this piece on,
	// wrapping (SetPeerInOrder); -1: rarest first.
	inOrder int

	prior *prior // estimates for a peer not yet measured

	cancelled [cancelRing]int64
	cancelPos int

	// rejected are blocks pe refused lately (REJECT), by key, with the
	// picker clock then (unix ns): not asked of pe again for
	// rejectBackoff, so that a peer refusing blocks it claims to have
	// cannot hold them (asked, refused, asked again at once, for ever)
	// while others could send them. At most maxOutPerPeer entries.
	rejected map[int64]int64

	lastPreempt int64 // picker clock at the last preemptPeer that withdrew requests

	// Statistics, from BlockReceived unless told (told: SetPeerStats).
	told      bool
	rate      float64 // bytes/s, EWMA over busy time
	lat       float64 // seconds, request to first byte, EWMA
	nRate     int
	nLat      int
	busySince int64
	lastRecv  int64
	accBytes  int64
	accNanos  int64
}

type outReq struct {
	at, eta int64
	ahead   int64 // bytes outstanding before this one when requested
	length  int64
	hot     bool // asked for a reader (urgent, window, head/tail)
}

func (p *Picker) peer(id PeerID) *peer {
	if i, ok := p.peerIdx[id]; ok {
		return p.peers[i]
	}
	return nil
}

// AddPeer starts tracking a connection. A new peer is choking us until
// PeerChoked(id, false), as in the wire protocol.
func (p *Picker) AddPeer(id PeerID) {
	if _, ok := p.peerIdx[id]; ok {
		return
	}
	pe := &peer{id: id, choked: true, has: newBitset(p.n), out: make(map[int64]outReq), prior: &p.prior, total: &p.outBytes, inOrder: -1}
	for i := range pe.cancelled {
		pe.cancelled[i] = -1
	}
	p.peerIdx[id] = len(p.peers)
	p.peers = append(p.peers, pe)
	p.rank.dirty = true
}

// RemovePeer forgets a connection; its outstanding requests become
// requestable from others.
func (p *Picker) RemovePeer(id PeerID) {
	pe := p.peer(id)
	if pe == nil {
		return
	}
	p.dropOut(pe, func(int64, outReq) bool { return true })
	if pe.seed {
		p.numSeeds--
	} else {
		forEach(pe.has, func(i int) { p.availDelta(i, -1) })
	}
	i := p.peerIdx[id]
	last := p.peers[len(p.peers)-1]
	p.peers[i] = last
	p.peerIdx[last.id] = i
	p.peers = p.peers[:len(p.peers)-1]
	delete(p.peerIdx, id)
	p.rank.dirty = true
}

// PeerHave records a HAVE message.
func (p *Picker) PeerHave(id PeerID, piece int) {
	pe := p.peer(id)
	if pe == nil || pe.seed || !p.validPiece(piece) || pe.has.get(piece) {
		return
	}
	pe.has.set(piece)
	pe.count++
	p.availDelta(piece, +1)
	if p.wanted.get(piece) && !p.have.get(piece) {
		pe.wantedMissing++
	}
	if pe.count == p.n {
		p.setPeerPieces(pe, nil, true)
	}
}

// PeerBitfield records a BITFIELD message (BEP 3 bit order: the high bit
// of byte 0 is piece 0), replacing what was known. Bits past the last piece
// are ignored; a short bitfield means the missing pieces are absent.
func (p *Picker) PeerBitfield(id PeerID, bits []byte) {
	pe := p.peer(id)
	if pe == nil {
		return
	}
	nb := newBitset(p.n)
	for i := 0; i < p.n && i/8 < len(bits); i++ {
		if bits[i/8]&(0x80>>(uint(i)&7)) != 0 {
			nb.set(i)
		}
	}
	all := nb.count() == p.n
	if all {
		nb = nil
	}
	p.setPeerPieces(pe, nb, all)
}

// PeerHaveAll records a HAVE ALL message (BEP 6).
func (p *Picker) PeerHaveAll(id PeerID) {
	if pe := p.peer(id); pe != nil && !pe.seed {
		p.setPeerPieces(pe, nil, true)
	}
}

// setPeerPieces replaces pe's piece set: has (nil for none) or seed.
func (p *Picker) setPeerPieces(pe *peer, has bitset, seed bool) {
	if pe.seed {
		p.numSeeds--
	} else {
		forEach(pe.has, func(i int) { p.availDelta(i, -1) })
	}
	pe.seed = seed
	pe.has = has
	if seed {
		p.numSeeds++
		pe.has = nil
		pe.count = p.n
	} else {
		if pe.has == nil {
			pe.has = newBitset(p.n)
		}
		pe.count = pe.has.count()
		forEach(pe.has, func(i int) { p.availDelta(i, +1) })
	}
	pe.recountWanted(p)
	p.rank.dirty = true
}

func forEach(b bitset, f func(int)) {
	for w, word := range b {
		for word != 0 {
			t := word & -word
			f(w<<6 + bitsTrailing(word))
			word ^= t
		}
	}
}

func (p *Picker) availDelta(piece, d int) {
	a := int(p.avail[piece]) + d
	if a < 0 || a > 0xffff {
		return
	}
	p.avail[piece] = uint16(a)
	if k := p.rar.key[piece]; k != 0 {
		p.rar.setKey(piece, p.rarKey(piece))
	}
}

// peerWantedDelta adjusts wantedMissing of the non-seed peers that have piece.
func (p *Picker) peerWantedDelta(piece, d int) {
	for _, pe := range p.peers {
		if !pe.seed && pe.has.get(piece) {
			pe.wantedMissing += d
		}
	}
}

func (pe *peer) recountWanted(p *Picker) {
	if pe.seed {
		pe.wantedMissing = 0
		return
	}
	pe.wantedMissing = andNotCount(pe.has, p.wanted, p.have)
}

func (pe *peer) hasPiece(i int) bool { return pe.seed || pe.has.get(i) }

// PeerChoked records CHOKE (true) or UNCHOKE (false). On choke, requests
// outside the peer's allowed-fast set are dropped and become requestable
// from others; the peer discards them itself, so no CANCEL is needed.
func (p *Picker) PeerChoked(id PeerID, choked bool) {
	pe := p.peer(id)
	if pe == nil || pe.choked == choked {
		return
	}
	pe.choked = choked
	p.rank.dirty = true
	if choked {
		p.dropOut(pe, func(k int64, _ outReq) bool {
			piece, _ := p.unkey(k)
			return !slices.Contains(pe.fast, piece)
		})
		pe.busySince = 0
	}
}

// SetPeerStats gives a peer's rate (bytes/s) and latency (request to
// first byte) as measured by the engine, and from then on BlockReceived
// no longer samples them: for a source that delivers whole pieces in
// bursts (a web seed), whose blocks' arrival times say nothing about its
// rate (all of a piece's blocks arrive at once, so per-block timing
// counts one block in a piece). Call it again as the measurement
// changes; a rate of 0 or less leaves the current estimate.
func (p *Picker) SetPeerStats(id PeerID, rate float64, lat time.Duration) {
	pe := p.peer(id)
	if pe == nil || rate <= 0 {
		return
	}
	l := max(lat.Seconds(), 0)
	if pe.told && pe.rate == rate && pe.lat == l {
		return
	}
	pe.told = true
	pe.rate, pe.lat = rate, l
	pe.nRate, pe.nLat = max(pe.nRate, 1), max(pe.nLat, 1)
	pe.accBytes, pe.accNanos = 0, 0
	p.rank.dirty = true
}

// SetPeerInOrder makes the peer's background pieces (what no reader asks
// for) go lowest first from piece from on, wrapping to the start, instead
// of rarest first: for a source that serves pieces best in order, such as
// a web seed that ignores Range and is read as a stream (from is where
// its stream stands). Readers' pieces go to it as to any peer, but for a
// media reader's head and tail that lie more than inOrderReach bytes past
// where its stream would stand: those are left to other sources until a
// read asks for them. A from below 0 restores rarest first.
func (p *Picker) SetPeerInOrder(id PeerID, from int) {
	if pe := p.peer(id); pe != nil {
		if from >= p.n {
			from = 0
		}
		pe.inOrder = max(from, -1)
	}
}

// PeerAllowedFast records an ALLOWED FAST message (BEP 6): the peer serves
// piece even while choking us.
func (p *Picker) PeerAllowedFast(id PeerID, piece int) {
	pe := p.peer(id)
	if pe == nil || !p.validPiece(piece) || slices.Contains(pe.fast, piece) || len(pe.fast) >= maxAllowedFast {
		return
	}
	pe.fast = append(pe.fast, piece)
}

// interestLinger is how long, under OnlyWanted, interest in a peer with
// pieces we lack outlasts the last reader activity (and the torrent's
// start). A remote peer chokes us when we lose interest (libtorrent does
// at once, dropping our queued requests) and unchokes us only a round trip
// after we regain it: a player's next seek, or the first read right after
// a mount, would wait for that round trip, and its first urgent piece
// would go to whichever peer unchoked first instead of being spread over
// all of them.
const interestLinger = 20 * time.Second

// Interesting reports whether the peer has a piece we still want under the
// current policy: something a reader waits for or will soon, or under All
// any wanted piece we lack. Under OnlyWanted, any wanted piece we lack
// also counts until interestLinger after the last reader activity (or the
// first time the picker was given), so that peers keep us unchoked while
// a file is in use.
func (p *Picker) Interesting(id PeerID) bool {
	pe := p.peer(id)
	if pe == nil {
		return false
	}
	lacks := pe.seed && p.wantedMissing > 0 || !pe.seed && pe.wantedMissing > 0
	if p.policy == All || p.strategy != stratStreaming {
		if lacks {
			return true
		}
	}
	if lacks && p.strategy == stratStreaming && p.clock-p.lastWant < int64(interestLinger) {
		return true
	}
	return p.readersWantFrom(pe)
}

// Outstanding returns how many requests the peer holds.
func (p *Picker) Outstanding(id PeerID) int {
	if pe := p.peer(id); pe != nil {
		return len(pe.out)
	}
	return 0
}

// OutstandingBytes returns the bytes of all requests outstanding from
// peers, but those of peers given to Uncount. O(1): an engine may check a
// budget of bytes in flight before every request it sends.
func (p *Picker) OutstandingBytes() int64 { return p.outBytes }

// Uncount leaves the peer's requests, now and later, out of
// OutstandingBytes: a source whose requests the engine bounds on their
// own, such as a web seed's runs.
func (p *Picker) Uncount(id PeerID) {
	if pe := p.peer(id); pe != nil && pe.total != nil {
		*pe.total -= pe.outBytes
		pe.total = nil
	}
}

func (pe *peer) addOut(k, t, eta, length int64, hot bool) {
	if len(pe.out) == 0 {
		pe.busySince = t
	}
	pe.out[k] = outReq{at: t, eta: eta, ahead: pe.outBytes, length: length, hot: hot}
	pe.outBytes += length
	if pe.total != nil {
		*pe.total += length
	}
	if !hot {
		pe.coldBytes += length
	}
}

func (pe *peer) removeOut(k int64) (outReq, bool) {
	o, ok := pe.out[k]
	if ok {
		delete(pe.out, k)
		pe.outBytes -= o.length
		if pe.total != nil {
			*pe.total -= o.length
		}
		if !o.hot {
			pe.coldBytes -= o.length
		}
	}
	return o, ok
}

func (pe *peer) noteCancelled(k int64) {
	pe.cancelled[pe.cancelPos] = k
	pe.cancelPos = (pe.cancelPos + 1) % cancelRing
}

func (pe *peer) wasCancelled(k int64) bool {
	return slices.Contains(pe.cancelled[:], k)
}

// noteRejected remembers that pe refused block k at clock.
func (pe *peer) noteRejected(k, clock int64) {
	if pe.rejected == nil {
		pe.rejected = make(map[int64]int64)
	}
	if len(pe.rejected) >= maxOutPerPeer {
		for j, at := range pe.rejected {
			if clock-at >= int64(rejectBackoff) {
				delete(pe.rejected, j)
			}
		}
		if len(pe.rejected) >= maxOutPerPeer {
			clear(pe.rejected)
		}
	}
	pe.rejected[k] = clock
}

// refusedLately reports whether pe refused block k less than
// rejectBackoff before clock.
func (pe *peer) refusedLately(k, clock int64) bool {
	_, ok := pe.refusedAgo(k, clock)
	return ok
}

// refusedAgo reports how long before clock pe refused block k, if it did
// within rejectBackoff.
func (pe *peer) refusedAgo(k, clock int64) (int64, bool) {
	at, ok := pe.rejected[k]
	if !ok || clock-at >= int64(rejectBackoff) {
		return 0, false
	}
	return clock - at, true
}

// dropOut returns pe's outstanding requests selected by f to the pool,
// without cancels (the peer has already forgotten them). Their blocks may
// still arrive; the cancelled ring lets BlockReceived accept them.
func (p *Picker) dropOut(pe *peer, f func(int64, outReq) bool) {
	keys := make([]int64, 0, len(pe.out))
	for k, o := range pe.out {
		if f(k, o) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		piece, b := p.unkey(k)
		pe.removeOut(k)
		pe.noteCancelled(k)
		if pa := p.partOf(piece); pa != nil {
			p.removeHolder(pa, b, pe.id)
		}
	}
}

// est is the expected seconds until pe delivers extra more bytes asked now.
func (pe *peer) est(extra int64) float64 {
	return pe.latOrDefault() + float64(pe.outBytes+extra)/pe.rateOrDefault()
}

// speed is the seconds pe needs for n bytes with an empty queue: its
// intrinsic speed, what slow-peer decisions compare.
func (pe *peer) speed(n int64) float64 {
	return pe.latOrDefault() + float64(n)/pe.rateOrDefault()
}

func (pe *peer) estNanos(extra int64) int64 { return int64(pe.est(extra) * 1e9) }

// rateOrDefault is pe's measured rate, or for a peer not measured yet the
// mean of those measured: neither trusted nor shunned. (A pessimistic
// default would keep new peers off urgent work, where they would get
// measured, forever.)
func (pe *peer) rateOrDefault() float64 {
	if pe.nRate == 0 {
		return pe.prior.rate
	}
	return pe.rate
}

func (pe *peer) latOrDefault() float64 {
	if pe.nLat == 0 {
		return pe.prior.lat
	}
	return pe.lat
}

// prior is what an unmeasured peer is assumed to do.
type prior struct{ rate, lat float64 }

// refreshPrior sets the prior to the mean of the measured peers. Peers whose statistics were told (SetPeerStats: web seeds) are not
// counted: an HTTP mirror says nothing about what a new peer will do.
func (p *Picker) refreshPrior() {
	var r, l float64
	var nr, nl int
	for _, pe := range p.peers {
		if pe.told {
			continue
		}
		if pe.nRate > 0 {
			r += pe.rate
			nr++
		}
		if pe.nLat > 0 {
			l += pe.lat
			nl++
		}
	}
	p.prior = prior{rate: defaultRate, lat: defaultLat.Seconds()}
	if nr > 0 {
		p.prior.rate = r / float64(nr)
	}
	if nl > 0 {
		p.prior.lat = l / float64(nl)
	}
}

// sample updates pe's statistics for a block that arrived at t.
func (pe *peer) sample(o outReq, t int64) {
	if pe.told {
		pe.lastRecv = t
		return
	}
	dt := float64(t-o.at) / 1e9
	if dt < 0 {
		dt = 0
	}
	// Latency: only from requests that found the pipeline (nearly) empty:
	// the wait minus the transfer of this block and what was ahead. With a
	// full pipeline, what was ahead may be on the wire already or still
	// queued, and the wait says nothing reliable about the round trip.
	if o.ahead <= o.length {
		l := dt - float64(o.ahead+o.length)/pe.rateOrDefault()
		if pe.nRate == 0 {
			l = dt
		}
		l = max(l, 0)
		if pe.nLat == 0 {
			pe.lat = l
		} else {
			pe.lat += 0.25 * (l - pe.lat)
		}
		pe.nLat++
	}
	// Rate: each block's transfer time is from when the peer could start
	// sending it (the previous block done, or the request arrived) to its
	// arrival, so a pipeline that is not kept full still measures the
	// link, not our own pauses.
	//
	// A peer that serves in batches (transmission pumps every 500 ms)
	// delivers each block about when the latency measured on an empty
	// pipeline says it could only start: no transfer time to measure, and
	// an unmeasured peer keeps the default rate, and the short queue that
	// allows, for ever. So until its first sample, a block that took no
	// measurable time still counts its bytes, and rateBurst bytes make a
	// sample however short their time: the peer is at least that fast.
	start := max(pe.lastRecv, o.at+int64(pe.latOrDefault()*1e9))
	if t > start || pe.nRate == 0 {
		pe.accBytes += o.length
		pe.accNanos += max(t-start, 0)
		if pe.accNanos >= minRateSpan && pe.accBytes >= 2*o.length || pe.nRate == 0 && pe.accBytes >= rateBurst {
			r := float64(pe.accBytes) / (float64(max(pe.accNanos, minRateSpan)) / 1e9)
			if pe.nRate == 0 {
				pe.rate = r
			} else {
				pe.rate += 0.3 * (r - pe.rate)
			}
			pe.nRate++
			pe.accBytes, pe.accNanos = 0, 0
		}
	}
	pe.lastRecv = t
}

// Rate samples span at least minRateSpan of transfer time; a peer's first
// one also ends after rateBurst bytes, however fast they came.
const (
	minRateSpan = int64(20 * time.Millisecond)
	rateBurst   = 256 << 10
)

// rankCache holds swarm-wide figures the per-peer decisions compare
// against, refreshed at most every rankEvery (O(peers) each time).
type rankCache struct {
	dirty      bool
	at         int64
	bestPiece  float64 // lowest speed(one piece) among unchoked peers
	pieceAll   float64 // seconds for one piece shared by all unchoked peers
	unchoked   int     // unchoked peers
	sumRate    float64 // unchoked peers' rates
	sumRateLat float64 // sum of rate*latency over the same peers
}

const rankEvery = int64(50 * time.Millisecond)

func (p *Picker) refreshRank(t int64) {
	if !p.rank.dirty && t-p.rank.at < rankEvery && t >= p.rank.at {
		return
	}
	p.refreshPrior()
	rc := rankCache{at: t, bestPiece: -1}
	for _, pe := range p.peers {
		if pe.choked {
			continue
		}
		pc := pe.speed(p.pieceLen)
		if rc.bestPiece < 0 || pc < rc.bestPiece {
			rc.bestPiece = pc
		}
		rc.unchoked++
		rc.sumRate += pe.rateOrDefault()
		rc.sumRateLat += pe.rateOrDefault() * pe.latOrDefault()
	}
	if rc.sumRate > 0 {
		// Water-filling over every unchoked peer: each starts after its
		// latency, all finish together.
		rc.pieceAll = (float64(p.pieceLen) + rc.sumRateLat) / rc.sumRate
	}
	p.rank = rc
}

// urgentSlow reports whether pe is too slow for urgent blocks: one block
// from it would take longer than urgentSlowFactor times what the unchoked
// peers together need for a whole piece. Comparing with the best peer's
// time for one block instead shunned a rate-capped seeder whose single
// latency sample caught a pause of its limiter (100 ms against 10 ms):
// a quarter of a slow swarm left idle while a read waits.
func (p *Picker) urgentSlow(pe *peer) bool {
	return pe.speed(p.blk) > urgentSlowFactor*p.rank.pieceAll+urgentSlack
}

// swarmRateNow is the download rate used for window sizing.
func (p *Picker) swarmRateNow() float64 {
	if p.swarmRate > 0 {
		return p.swarmRate
	}
	if p.rank.sumRate > 0 {
		return p.rank.sumRate
	}
	return defaultRate
}

// SetRate tells the picker the torrent's current download rate in bytes
// per second, for window sizing. Without it the picker sums its own
// per-peer estimates.
func (p *Picker) SetRate(downloadBytesPerSec float64) {
	if downloadBytesPerSec >= 0 {
		p.swarmRate = downloadBytesPerSec
	}
}
