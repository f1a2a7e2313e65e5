package engine

import (
	"cmp"
	"net/netip"
	"slices"
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
// pieces, one webseed.Seed.FetchPieces each, on a goroutine of the
// torrent's (t.wg), never on the loop and never under a lock; runs start
// most urgent first, and a run whose remaining pieces the picker withdraws
// (after a seek) is cut short. The body is read straight
// into piece buffers; a v1 piece is hashed as it arrives. Each piece is
// posted to the loop as it arrives and goes through storeBlock, hashing
// (skipped when it matched already) and the store like a peer's blocks. A
// piece that fails its hash check blames the seed through its
// pseudo-address (ban calls webSeedBadPiece): strikes drop it, by
// webseed's rules.

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
)

// webSeed is one url-list URL of a torrent. Loop-owned, except seed (safe
// for concurrent use).
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
	// noRanges: the server answers ranges with whole files (logged once).
	// Each run then reads its file from its start, or on from where the
	// last run left its body: one run at a time (maxRuns), and the
	// picker's background pieces in order from streamAt, and runs nearest
	// ahead of it first, so that the next run reads on.
	noRanges bool
	streamAt int       // the piece after the last one delivered
	choked   bool      // backing off: a choking peer to the picker, which then plans without it
	down     rateMeter // of the payload the seed counts as it arrives
	lastErr  string    // the last failure logged, so a repeat is not logged again

	// inOrderGuess: the server's HEAD did not say it honours Range
	// (webseed.Stats.RangesDoubtful), so until its first answer tells,
	// the picker treats it as one that does not, as for noRanges.
	inOrderGuess bool
}

// inOrder reports whether the picker serves ws in order, as a server that
// ignores Range, found so or guessed.
func (ws *webSeed) inOrder() bool { return ws.noRanges || ws.inOrderGuess }

// maxRuns is how many runs ws may have in flight, st its stats: one until
// a first answer tells whether the server honours Range (each run of a
// server that does not would read its file from the start), and one for
// such a server.
func (ws *webSeed) maxRuns(st webseed.Stats) int {
	if ws.noRanges || !st.Answered {
		return 1
	}
	return maxWebSeedRuns
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

// preconnectWebSeeds opens a connection to each web seed's server as a
// torrent with pieces to fetch starts, off the loop, so that the first
// read's request does not wait for a lookup and a handshake (on a real
// mirror, one to three round trips).
//
// At most maxPreconnect seeds a torrent, and an origin (scheme, host and
// port) once per preconnectEvery for the whole client: a mount of many
// torrents on one mirror opens one connection, not one per torrent.
func (t *Torrent) preconnectWebSeeds() {
	n := 0
	for _, ws := range t.ws.list {
		s := ws.seed
		if n == maxPreconnect || !t.client.preconnectOrigin(s.Origin(), time.Now()) {
			continue
		}
		n++
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			if err := s.Preconnect(t.ctx); err != nil && t.ctx.Err() == nil {
				t.client.logf("%s: %v", t.name(), err)
			}
		}()
	}
}

const (
	maxPreconnect   = 4
	preconnectEvery = time.Minute // within net/http's 90 s idle timeout
)

// preconnectOrigin reports whether origin may be connected to ahead of a
// request at now, and if so notes it.
func (c *Client) preconnectOrigin(origin string, now time.Time) bool {
	p := &c.preconnected
	p.Lock()
	defer p.Unlock()
	if at, ok := p.at[origin]; ok && now.Sub(at) < preconnectEvery {
		return false
	}
	if p.at == nil {
		p.at = make(map[string]time.Time)
	}
	for o, at := range p.at { // keep the map small
		if now.Sub(at) >= preconnectEvery {
			delete(p.at, o)
		}
	}
	p.at[origin] = now
	return true
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
	t.picker.Uncount(ws.id) // its runs stay out of maxOutstandingBytes
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
	if ws.inOrder() {
		t.picker.SetPeerInOrder(ws.id, ws.streamAt)
	}
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
	if ws.dropped || t.picker == nil || t.hashing >= maxHashBacklog {
		return
	}
	st := ws.seed.Stats()
	if st.NoRanges && !ws.noRanges {
		ws.noRanges = true
		t.picker.SetPeerInOrder(ws.id, ws.streamAt)
		t.client.logf("%s: web seed %s ignores Range requests (it answers with whole files): its files are read from their start, one run at a time", t.name(), st.URL)
		t.cutWebSeedRunsButFirst(ws)
	}
	if guess := st.RangesDoubtful && !st.Answered; guess != ws.inOrderGuess && !ws.noRanges {
		// Found doubtful by the torrent's first HEAD, or cleared by an
		// answer that honoured Range. Doubtful, a media file's tail is
		// not asked of it before a read wants it: if the server ignores
		// Range, that would cost the whole file.
		ws.inOrderGuess = guess
		from := -1
		if guess {
			from = ws.streamAt
		}
		t.picker.SetPeerInOrder(ws.id, from)
	}
	if ws.runs >= ws.maxRuns(st) {
		t.preemptWebSeedRun(ws)
		return
	}
	if ready := ws.seed.Ready(now); ready == ws.choked {
		ws.choked = !ready
		t.picker.PeerChoked(ws.id, ws.choked)
	}
	if ws.choked {
		return
	}
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
	maxRun := max(int64(webSeedRunBytes), t.info.PieceLength)
	// Runs are started in the picker's order, the most urgent piece
	// first, while the seed has run slots.
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
	if ws.noRanges {
		// One run reads on from where the last left the body: a span a
		// read waits for first, then the nearest ahead of the stream.
		n := t.info.NumPieces()
		for k := range spans {
			sp := &spans[k]
			sp.rank = (pieces[sp.i] - ws.streamAt + n) % n
			for _, p := range pieces[sp.i:sp.j] {
				if t.waits.pending[p] > 0 {
					sp.rank -= n
					break
				}
			}
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.rank, b.rank) })
	for _, sp := range spans {
		if ws.runs < ws.maxRuns(st) {
			t.startWebSeedRun(ws, pieces[sp.i], sp.j-sp.i)
			continue
		}
		for _, p := range pieces[sp.i:sp.j] {
			for _, r := range byPiece[p] {
				t.picker.RequestReturned(ws.id, r)
			}
			delete(ws.asked, p)
		}
	}
}

// webSeedPiece takes a piece from ws (good: it matched its hash already):
// the blocks the picker asked of it (or withdrew, and nobody else
// delivered) go to assembly like a peer's. Loop only; it takes buf.
func (t *Torrent) webSeedPiece(ws *webSeed, run *webSeedRun, idx int, buf []byte, good bool) {
	delete(ws.fetching, idx)
	delete(ws.asked, idx)
	run.next = idx + 1
	ws.streamAt = idx + 1
	if ws.inOrder() && t.picker != nil {
		t.picker.SetPeerInOrder(ws.id, ws.streamAt)
	}
	if t.picker == nil || ws.dropped {
		putPieceBuf(buf)
		return
	}
	t.takeWebSeedPiece(ws, idx, buf, good)
	t.fillWebSeed(ws, time.Now())
}

// takeWebSeedPiece is webSeedPiece without the refill. The piece counts
// whole, whatever share of its blocks the picker asked of ws (it hands an
// urgent piece's blocks out a few at a time, to share them among sources;
// taken block by block, the rest waited for the picker's next fill and the
// piece was assembled and hashed again: 1-3 ms more for the first byte
// after a mount). good: it matched its v1 hash as it arrived, and is
// readable at once; otherwise (v2 and hybrid pieces, whose Merkle check
// follows, or a v1 piece that failed) it is checked again whole, and a
// failure is the seed's alone. Blocks of it that peers sent are
// superseded.
func (t *Torrent) takeWebSeedPiece(ws *webSeed, idx int, buf []byte, good bool) {
	cancels, ok := t.picker.PieceArrived(ws.id, idx, time.Now())
	t.sendCancels(cancels)
	if !ok {
		// Here already, or a whole copy is being checked.
		t.pub.wasted.Add(int64(len(buf)))
		putPieceBuf(buf)
		return
	}
	if pp := t.partial[idx]; pp != nil {
		delete(t.partial, idx)
		putPieceBuf(pp.buf)
	}
	from := make([]netip.Addr, (len(buf)+peer.BlockSize-1)/peer.BlockSize)
	for b := range from {
		from[b] = ws.addr
	}
	t.hashPiece(idx, &partialPiece{buf: buf, from: from, count: len(from), good: good})
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
		ws.down.update(ws.seed.Stats().Bytes, now)
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
	// NoRanges: the server ignores Range; a seek into a file costs the
	// bytes before it.
	NoRanges bool `json:"no_ranges,omitempty"`
}

// webSeedStats describes the seeds for refreshStats, and returns the
// seeds too. Loop only.
func (t *Torrent) webSeedStats() ([]WebSeedStats, []*webseed.Seed) {
	if len(t.ws.list) == 0 {
		return nil, nil
	}
	out := make([]WebSeedStats, 0, len(t.ws.list))
	seeds := make([]*webseed.Seed, 0, len(t.ws.list))
	for _, ws := range t.ws.list {
		out = append(out, webSeedStat(ws.seed.Stats(), ws.down.value))
		seeds = append(seeds, ws.seed)
	}
	return out, seeds
}

// webSeedStat is a seed's entry in Stats.WebSeeds, rate its download rate.
func webSeedStat(st webseed.Stats, rate float64) WebSeedStats {
	w := WebSeedStats{
		URL: st.URL, State: st.State.String(), Rate: rate, Bytes: st.Bytes,
		DisabledFiles: st.DisabledFiles, Strikes: st.Strikes, LastError: st.LastError,
		NoRanges: st.NoRanges,
	}
	if st.State == webseed.BackingOff {
		w.RetryAt = st.RetryAt
	}
	return w
}
