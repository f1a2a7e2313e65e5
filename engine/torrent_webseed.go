package engine

import (
	"cmp"
	"context"
	"crypto/sha1"
	"errors"
	"hash"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/webseed"
	"github.com/swarmfs/swarmfs/picker"
)

// Web seeds (BEP 19): each url-list URL of a torrent is a source that has
// every piece. The loop drives it like a peer: it is a picker peer with
// HAVE ALL (or, once files are gone from it, a bitfield of what it still
// serves), never choking, whose rate and latency (measured by the seed
// and told with SetPeerStats) the picker weighs, so urgent pieces and
// readers' windows go to it when it is the fastest way and peers get the
// rest. What the picker asks
// of it is rounded to whole pieces and fetched as runs of consecutive
// pieces, one webseed.Seed.Fetch each, on a goroutine of the torrent's
// (t.wg), never on the loop and never under a lock. Each piece is posted
// to the loop as it arrives and goes through storeBlock, hashing and the
// store like a peer's blocks. A piece that fails its hash check blames the
// seed through its pseudo-address (ban calls webSeedBadPiece): strikes
// drop it, by webseed's rules.

const (
	// maxWebSeedRuns bounds the fetches in flight per seed (webseed's
	// client allows 4 connections per host).
	maxWebSeedRuns = 4
	// webSeedRunBytes bounds one run (a piece at least): a reader's
	// window fills with a few requests, and a failed request wastes
	// little.
	webSeedRunBytes = 4 << 20
	// webSeedMinPipeline and webSeedMaxPipeline bound the blocks
	// outstanding with a seed: 1 MiB to 16 MiB, two seconds of its rate.
	webSeedMinPipeline = 64
	webSeedMaxPipeline = 1024
	// webSeedStash bounds the pieces a seed keeps for blocks the picker
	// has not asked of it yet.
	webSeedStash = 8
)

// webSeed is one url-list URL of a torrent. Loop-owned, except seed (safe
// for concurrent use) and bytes.
type webSeed struct {
	seed     *webseed.Seed
	addr     netip.Addr    // pseudo-address in 100::/64 (discard-only), for partialPiece.from and strikes
	id       picker.PeerID // its picker peer; changes when files drop out
	disabled int           // Stats.DisabledFiles when it was last registered
	fetching map[int]bool  // pieces of runs in flight not delivered yet
	runs     int           // fetches in flight
	active   []*webSeedRun // the runs in flight, oldest first
	// asked counts, per piece, the blocks the picker has asked of this
	// seed and not withdrawn: a run whose remaining pieces are no longer
	// asked (a seek withdrew them) is cut short (trimWebSeedRun).
	asked   map[int]int
	dropped bool
	choked  bool         // backing off: a choking peer to the picker, which then plans without it
	bytes   atomic.Int64 // payload received, for down
	down    rateMeter
	lastErr string // the last failure logged, so a repeat is not logged again
	// stash keeps pieces fetched whole of which the picker had asked
	// only some blocks (it hands out blocks, not pieces): when it asks
	// for the rest, they are here, not fetched again. Oldest first,
	// at most webSeedStash.
	stash []stashed
}

// webSeedRun is one fetch of pieces [first, end) in flight. Loop-owned,
// except stopAt and cancel, which the fetch's goroutine reads.
type webSeedRun struct {
	first, end int
	next       int       // pieces before next were delivered to the loop
	started    time.Time // when the fetch began
	stopped    bool      // cut short by trimWebSeedRun: its end is no failure
	// stopAt: the fetch ends once the pieces before it are delivered
	// (end: it runs to its end).
	stopAt atomic.Int64
	cancel context.CancelFunc // ends the fetch at once
}

// errRunStopped ends a web-seed run whose remaining pieces were withdrawn.
var errRunStopped = errors.New("web seed run no longer wanted")

// stashed is a piece a web seed fetched and the picker did not take whole.
type stashed struct {
	piece int
	buf   []byte
	good  bool // it matched its hash as it arrived
}

// webSeeds are a torrent's web seeds. Loop-owned; list is fixed once the
// info is known.
type webSeeds struct {
	list []*webSeed
}

// webSeedPrefix is 100::/64, the discard-only prefix (RFC 6666): no peer
// connects from it, so an address in it names a web seed.
var webSeedPrefix = netip.MustParsePrefix("100::/64")

// initWebSeeds makes the torrent's web seeds from its url-list. With the
// info set, before the loop starts or on it.
func (t *Torrent) initWebSeeds() {
	c := t.client
	if c.web == nil || t.mi == nil || len(t.mi.URLList) == 0 {
		return
	}
	// URLs use the torrent's raw names, which NewLayout reads from the v1
	// "files" list; a v2-only torrent has none (its names are in its file
	// tree), so its sanitised names are used, which differ only for
	// names no file system takes as they are.
	raw := t.infoBytes
	if !t.info.HasV1() {
		raw = nil
	}
	layout, err := webseed.NewLayout(t.info, raw)
	if err != nil {
		c.logf("%s: web seeds: %v", t.name(), err)
		return
	}
	cfg := c.cfg.webSeed
	cfg.Client = c.web
	for _, u := range t.mi.URLList {
		s, err := webseed.New(u, layout, cfg)
		if err != nil {
			c.logf("%s: ignoring web seed: %v", t.name(), err)
			continue
		}
		a := webSeedPrefix.Addr().As16()
		n := len(t.ws.list) + 1
		a[14], a[15] = byte(n>>8), byte(n)
		ws := &webSeed{seed: s, addr: netip.AddrFrom16(a), fetching: map[int]bool{}, asked: map[int]int{}}
		t.ws.list = append(t.ws.list, ws)
		t.registerWebSeed(ws)
		c.logf("%s: web seed %s", t.name(), s.URL())
	}
}

// registerWebSeed makes ws a picker peer holding what it serves, under a
// new id when it had one: the picker has no way to take pieces back.
func (t *Torrent) registerWebSeed(ws *webSeed) {
	if ws.id != 0 {
		t.picker.RemovePeer(ws.id)
	}
	t.nextPeerID++
	ws.id = t.nextPeerID
	t.picker.AddPeer(ws.id)
	ws.disabled = ws.seed.Stats().DisabledFiles
	n := t.info.NumPieces()
	bits, all := peer.NewBits(n), true
	for p := range n {
		if ws.seed.Has(p) {
			bits.Set(p)
		} else {
			all = false
		}
	}
	if all {
		t.picker.PeerHaveAll(ws.id)
	} else {
		t.picker.PeerBitfield(ws.id, bits)
	}
	t.picker.PeerChoked(ws.id, ws.choked)
}

// webSeedAt returns the web seed whose pseudo-address is a, or nil.
func (t *Torrent) webSeedAt(a netip.Addr) *webSeed {
	if !webSeedPrefix.Contains(a) {
		return nil
	}
	for _, ws := range t.ws.list {
		if ws.addr == a {
			return ws
		}
	}
	return nil
}

// fillWebSeeds gives every ready web seed work. Loop only.
func (t *Torrent) fillWebSeeds(now time.Time) {
	for _, ws := range t.ws.list {
		t.fillWebSeed(ws, now)
	}
}

// fillWebSeed asks the picker for ws's share and fetches it as runs of
// whole pieces.
func (t *Torrent) fillWebSeed(ws *webSeed, now time.Time) {
	if ws.dropped || t.picker == nil || ws.runs >= maxWebSeedRuns || t.hashing >= maxHashBacklog {
		return
	}
	if ready := ws.seed.Ready(now); ready == ws.choked {
		ws.choked = !ready
		t.picker.PeerChoked(ws.id, ws.choked)
	}
	if ws.choked {
		return
	}
	st := ws.seed.Stats()
	if st.DisabledFiles != ws.disabled {
		t.registerWebSeed(ws)
	}
	rate := max(st.Rate, ws.down.value)
	// The picker cannot time a seed's blocks (a piece's arrive at once):
	// it is told what the seed measures.
	t.picker.SetPeerStats(ws.id, rate, st.TTFB)
	pipeline := min(max(int(2*rate/peer.BlockSize)+16, webSeedMinPipeline), webSeedMaxPipeline)
	free := pipeline - t.picker.Outstanding(ws.id)
	if free <= 0 {
		return
	}
	// Whole pieces: the picker hands out a piece's blocks in order, so
	// asking for whole pieces' worth keeps pieces from being split
	// between calls (and fetched twice).
	bpp := int((t.info.PieceLength + peer.BlockSize - 1) / peer.BlockSize)
	free = (free + bpp - 1) / bpp * bpp
	reqs := t.picker.Next(ws.id, now, free)
	t.sendCancels(t.picker.Cancels())
	if len(reqs) == 0 {
		return
	}
	// Round up to whole pieces; a piece a run already fetches is
	// delivered with it.
	byPiece := map[int][]picker.Request{}
	var pieces []int
	for _, r := range reqs {
		if _, ok := byPiece[r.Piece]; !ok && !ws.fetching[r.Piece] {
			pieces = append(pieces, r.Piece)
		}
		byPiece[r.Piece] = append(byPiece[r.Piece], r)
		ws.asked[r.Piece]++
	}
	// Each piece's place in the picker's order, which is by need.
	rank := make(map[int]int, len(pieces))
	for i, r := range reqs {
		if _, ok := rank[r.Piece]; !ok {
			rank[r.Piece] = i
		}
	}
	slices.Sort(pieces)
	// Pieces already here from an earlier fetch are delivered at once.
	var ready []stashed
	pieces = slices.DeleteFunc(pieces, func(p int) bool {
		i := slices.IndexFunc(ws.stash, func(s stashed) bool { return s.piece == p })
		if i < 0 {
			return false
		}
		ready = append(ready, ws.stash[i])
		ws.stash = slices.Delete(ws.stash, i, i+1)
		return true
	})
	defer func() {
		for _, s := range ready {
			t.takeWebSeedPiece(ws, s.piece, s.buf, s.good)
		}
	}()
	maxRun := max(int64(webSeedRunBytes), t.info.PieceLength)
	// Runs are started in the picker's order (the most urgent piece
	// first), one at a time: a run starts only once the one before it
	// has delivered its first piece (see webSeedStarting), so after a
	// seek the piece under the read has the link to itself instead of
	// sharing it with the window behind it, and later runs follow it
	// while it is still streaming, so the link does not idle between
	// runs either.
	type span struct{ i, j, rank int } // pieces[i:j], consecutive
	var spans []span
	for i := 0; i < len(pieces); {
		j, n := i+1, t.info.PieceLen(pieces[i])
		for j < len(pieces) && pieces[j] == pieces[j-1]+1 && n+t.info.PieceLen(pieces[j]) <= maxRun {
			n += t.info.PieceLen(pieces[j])
			j++
		}
		r := rank[pieces[i]]
		for _, p := range pieces[i:j] {
			r = min(r, rank[p])
		}
		spans = append(spans, span{i, j, r})
		i = j
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.rank, b.rank) })
	for k, sp := range spans {
		if k == 0 && ws.runs < maxWebSeedRuns && !t.webSeedStarting(ws, now) {
			t.startWebSeedRun(ws, pieces[sp.i], sp.j-sp.i)
			continue
		}
		for _, p := range pieces[sp.i:sp.j] {
			for _, r := range byPiece[p] {
				t.picker.RequestRejected(ws.id, r)
			}
			delete(ws.asked, p)
		}
	}
}

// webSeedStarting reports whether a run of ws is still waiting for its
// first piece, recently enough that it is not stalled: no other run
// starts meanwhile (fillWebSeed). A run counts as stalled past twice the
// seed's expected time to a piece (its time to first byte plus a piece at
// its rate), bounded to [250 ms, 2 s].
func (t *Torrent) webSeedStarting(ws *webSeed, now time.Time) bool {
	st := ws.seed.Stats()
	expect := 2 * time.Second
	if r := max(st.Rate, ws.down.value); r > 0 {
		expect = st.TTFB + time.Duration(float64(t.info.PieceLength)/r*float64(time.Second))
	}
	expect = min(max(2*expect, 250*time.Millisecond), 2*time.Second)
	for _, r := range ws.active {
		if r.next == r.first && !r.stopped && now.Sub(r.started) < expect {
			return true
		}
	}
	return false
}

// startWebSeedRun fetches pieces [first, first+count) off the loop, each
// read from the HTTP body straight into a piece buffer of its own, which is
// posted to the loop as soon as the piece is in (no copy between the body
// and assembly). A v1 torrent's pieces are hashed as their bytes arrive, so
// a piece's verdict is ready with its last byte: hashing no longer follows
// the transfer (the time to the first byte after a seek is one piece's
// transfer, not a transfer and then a hash).
func (t *Torrent) startWebSeedRun(ws *webSeed, first, count int) {
	for p := first; p < first+count; p++ {
		ws.fetching[p] = true
	}
	ws.runs++
	ctx, cancel := context.WithCancel(t.ctx)
	run := &webSeedRun{first: first, end: first + count, next: first, started: time.Now(), cancel: cancel}
	run.stopAt.Store(int64(run.end))
	ws.active = append(ws.active, run)
	// A v2 or hybrid torrent's piece needs its Merkle check too, which
	// may wait for a piece layer: hashPiece checks those.
	sha1Only := !t.info.HasV2()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer cancel()
		bufs := make([][]byte, count)
		for i := range bufs {
			bufs[i] = getPieceBuf(int(t.info.PieceLen(first + i)))
		}
		next := first // pieces before next were handed to the loop
		defer func() {
			for i := next - first; i < count; i++ {
				putPieceBuf(bufs[i])
			}
		}()
		var h pieceHasher
		var arrived func(idx, n int)
		if sha1Only {
			arrived = func(idx, n int) { h.add(idx, bufs[idx-first][:n]) }
		}
		err := ws.seed.FetchPieces(ctx, first, count, bufs, arrived, func(idx int, data []byte) error {
			good := false
			if sha1Only {
				h.add(idx, data)
				good = h.sum() == t.info.PieceHash(idx)
			}
			// --max-download-rate holds web seeds too: the rest of the
			// run is read no faster than the limit allows.
			if lim := t.client.downLim; lim != nil {
				if err := waitN(ctx, lim, len(data)); err != nil {
					return err
				}
			}
			ws.bytes.Add(int64(len(data)))
			t.pub.downloaded.Add(int64(len(data)))
			if !t.post(func() { t.webSeedPiece(ws, run, idx, data, good) }) {
				return ErrClosed
			}
			next = idx + 1
			if stop := int(run.stopAt.Load()); stop < run.end && next >= stop {
				return errRunStopped
			}
			return nil
		})
		t.post(func() { t.webSeedRunDone(ws, run, next, err) })
	}()
}

// pieceHasher hashes a run's pieces as their bytes arrive: add is given
// each piece's growing prefix in turn.
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

// webSeedPiece takes a piece from ws (good: it matched its hash already):
// the blocks the picker asked of it (or withdrew, and nobody else
// delivered) go to assembly like a peer's. Loop only; it takes buf.
func (t *Torrent) webSeedPiece(ws *webSeed, run *webSeedRun, idx int, buf []byte, good bool) {
	delete(ws.fetching, idx)
	delete(ws.asked, idx)
	run.next = idx + 1
	if t.picker == nil || ws.dropped {
		putPieceBuf(buf)
		return
	}
	t.takeWebSeedPiece(ws, idx, buf, good)
	t.fillWebSeed(ws, time.Now())
}

// takeWebSeedPiece is webSeedPiece without the refill: what the picker
// did not ask of ws yet goes to its stash.
func (t *Torrent) takeWebSeedPiece(ws *webSeed, idx int, buf []byte, good bool) {
	now := time.Now()
	nb := (len(buf) + peer.BlockSize - 1) / peer.BlockSize
	useful := make([]bool, nb)
	all := !t.HavePiece(idx) && t.partial[idx] == nil
	for b := range nb {
		s, e := b*peer.BlockSize, min((b+1)*peer.BlockSize, len(buf))
		r := picker.Request{Piece: idx, Begin: uint32(s), Length: uint32(e - s)}
		cancels, ok := t.picker.BlockReceived(ws.id, r, now)
		t.sendCancels(cancels)
		useful[b] = ok
		all = all && ok
	}
	if all {
		// The whole piece, and nothing of it here yet: hash it as it is.
		from := make([]netip.Addr, nb)
		for b := range from {
			from[b] = ws.addr
		}
		t.hashPiece(idx, &partialPiece{buf: buf, from: from, count: nb, good: good})
	} else {
		stored := false
		for b, ok := range useful {
			s, e := b*peer.BlockSize, min((b+1)*peer.BlockSize, len(buf))
			if !ok {
				continue
			}
			if t.HavePiece(idx) {
				t.pub.wasted.Add(int64(e - s))
				continue
			}
			t.storeBlock(idx, uint32(s), buf[s:e], ws.addr)
			stored = true
		}
		// Keep it while blocks of it are still to come: a partial piece
		// is waiting for them, or nothing of it is here yet.
		pp := t.partial[idx]
		if !t.HavePiece(idx) && (pp != nil && pp.count < len(pp.from) || pp == nil && !stored) {
			t.stashPiece(ws, stashed{idx, buf, good})
		} else {
			putPieceBuf(buf)
		}
	}
}

// stashPiece keeps s for the blocks of its piece the picker did not ask
// of ws yet, dropping the oldest stashed piece past webSeedStash.
func (t *Torrent) stashPiece(ws *webSeed, s stashed) {
	if len(ws.stash) >= webSeedStash {
		putPieceBuf(ws.stash[0].buf)
		ws.stash = slices.Delete(ws.stash, 0, 1)
	}
	ws.stash = append(ws.stash, s)
}

// webSeedRunDone ends a run whose pieces before next were delivered:
// what the picker asked of the rest is requestable again.
func (t *Torrent) webSeedRunDone(ws *webSeed, run *webSeedRun, next int, err error) {
	end := run.end
	ws.runs--
	ws.active = slices.DeleteFunc(ws.active, func(r *webSeedRun) bool { return r == run })
	for p := next; p < end; p++ {
		delete(ws.fetching, p)
		delete(ws.asked, p)
	}
	if run.stopped && (errors.Is(err, errRunStopped) || errors.Is(err, context.Canceled)) {
		err = nil // cut short by us: not the seed's failure
	}
	if t.picker == nil || ws.dropped {
		return
	}
	if next < end {
		for p := next; p < end; p++ {
			pl := t.info.PieceLen(p)
			for b := int64(0); b < pl; b += peer.BlockSize {
				t.picker.RequestRejected(ws.id, picker.Request{Piece: p, Begin: uint32(b), Length: uint32(min(peer.BlockSize, pl-b))})
			}
		}
	}
	now := time.Now()
	if err != nil && !errors.Is(err, ErrClosed) && t.ctx.Err() == nil {
		st := ws.seed.Stats()
		if errors.Is(err, webseed.ErrDropped) || st.State == webseed.Dropped {
			t.dropWebSeed(ws, err.Error())
			return
		}
		if msg := err.Error(); msg != ws.lastErr {
			ws.lastErr = msg
			if st.State == webseed.BackingOff {
				t.client.logf("%s: web seed: %v (backing off until %s)", t.name(), err, st.RetryAt.Format("15:04:05"))
			} else {
				t.client.logf("%s: web seed: %v", t.name(), err)
			}
		}
	} else if err == nil && !run.stopped {
		ws.lastErr = ""
	}
	t.fillWebSeed(ws, now)
}

// webSeedWithdrawn notes that the picker took back its request for a block
// of piece from ws (a seek, an urgent read elsewhere, or a peer that
// delivered it first) and cuts short the run fetching it once none of that
// run's remaining pieces is asked of ws any more. Loop only.
func (t *Torrent) webSeedWithdrawn(ws *webSeed, piece int) {
	if ws.asked[piece] > 1 {
		ws.asked[piece]--
		return
	}
	delete(ws.asked, piece)
	for _, run := range ws.active {
		if piece >= run.next && piece < run.end {
			t.trimWebSeedRun(ws, run)
		}
	}
}

// trimWebSeedRun ends run after its last piece still asked of ws: at once
// (cancelling the request) when none of its remaining pieces is, or once
// the pieces before the unwanted tail are in. The picker may ask for a
// trimmed piece again: it is fetched by a later run.
func (t *Torrent) trimWebSeedRun(ws *webSeed, run *webSeedRun) {
	stop := int(run.stopAt.Load())
	for stop > run.next && ws.asked[stop-1] == 0 {
		stop--
	}
	if stop == int(run.stopAt.Load()) {
		return
	}
	run.stopped = true
	run.stopAt.Store(int64(stop))
	if stop <= run.next {
		run.cancel()
	}
}

// webSeedByID returns the web seed whose picker peer is id, or nil.
func (t *Torrent) webSeedByID(id picker.PeerID) *webSeed {
	for _, ws := range t.ws.list {
		if ws.id == id && !ws.dropped {
			return ws
		}
	}
	return nil
}

// webSeedBadPiece gives ws a strike for a piece that failed its hash
// check, and drops it at its last.
func (t *Torrent) webSeedBadPiece(ws *webSeed, format string, args ...any) {
	dropped := ws.seed.BadPiece()
	t.client.logf("%s: web seed %s: "+format, append([]any{t.name(), ws.seed.URL()}, args...)...)
	if dropped {
		t.dropWebSeed(ws, "too many bad pieces")
	}
}

// dropWebSeed stops using ws for good; its requests go to other sources.
func (t *Torrent) dropWebSeed(ws *webSeed, why string) {
	if ws.dropped {
		return
	}
	ws.dropped = true
	t.picker.RemovePeer(ws.id)
	t.client.logf("%s: web seed %s dropped: %s", t.name(), ws.seed.URL(), why)
	t.fillAll()
}

// webSeedTick updates the seeds' rates and retries those whose back-off
// has passed.
func (t *Torrent) webSeedTick(now time.Time) {
	for _, ws := range t.ws.list {
		ws.down.update(ws.bytes.Load(), now)
	}
	t.fillWebSeeds(now)
}

// webSeedRate is the web seeds' download rate, bytes/s.
func (t *Torrent) webSeedRate() float64 {
	var r float64
	for _, ws := range t.ws.list {
		r += ws.down.value
	}
	return r
}

// WebSeedStats is one web seed in Stats.
type WebSeedStats struct {
	URL string `json:"url"` // without query or user info
	// State is "active", "backing off" or "dropped".
	State   string    `json:"state"`
	RetryAt time.Time `json:"retry_at,omitzero"` // when a backing-off seed is tried again
	Rate    float64   `json:"rate"`              // bytes/s received lately
	Bytes   int64     `json:"bytes"`             // payload received, before hash checks
	// DisabledFiles counts files the seed no longer serves (404, 410).
	DisabledFiles int    `json:"disabled_files,omitempty"`
	Strikes       int    `json:"strikes,omitempty"`
	LastError     string `json:"last_error,omitempty"`
}

// webSeedStats describes the seeds for refreshStats. Loop only.
func (t *Torrent) webSeedStats() []WebSeedStats {
	if len(t.ws.list) == 0 {
		return nil
	}
	out := make([]WebSeedStats, 0, len(t.ws.list))
	for _, ws := range t.ws.list {
		st := ws.seed.Stats()
		w := WebSeedStats{
			URL: st.URL, State: st.State.String(), Rate: ws.down.value, Bytes: st.Bytes,
			DisabledFiles: st.DisabledFiles, Strikes: st.Strikes, LastError: st.LastError,
		}
		if st.State == webseed.BackingOff {
			w.RetryAt = st.RetryAt
		}
		out = append(out, w)
	}
	return out
}
