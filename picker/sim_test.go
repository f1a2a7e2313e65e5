package picker

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"time"
)

// This file is a deterministic discrete-event simulator of one client
// downloading from a swarm: simulated time, seeded randomness, no
// goroutines. The client is a Picker driven the way the engine drives it
// (fill pipelines with Next, cancel what BlockReceived, Cancels and
// Timeouts return, verify a piece the moment its last block arrives).
// Remote peers serve our requests FIFO at their upload rate after a
// one-way latency, honour CANCEL for requests not yet sent, come and go
// (churn), and leechers among them gain pieces over time. Readers are
// players (a bitrate, a buffer, seeks) or copiers (as fast as possible).

// simPeerSpec describes one remote peer.
type simPeerSpec struct {
	rate    float64       // upload to us, bytes/s
	lat     time.Duration // one way
	frac    float64       // share of pieces at start; >= 1 is a seed
	grow    float64       // pieces gained per second (leechers)
	join    time.Duration // first connection
	session time.Duration // mean connected time; 0 = stays
	offline time.Duration // mean time away between sessions
	// burst, when set, makes rate a limiter that hands out rate*burst bytes
	// of quota every burst (libtorrent's is like that): blocks leave in
	// clumps, and arrive past smooth estimates.
	burst time.Duration
	// committed is how many bytes at the head of the peer's queue it has
	// already read for sending: CANCEL no longer stops them.
	committed int64
	// pulse, when set, makes the peer serve requests in batches: at
	// multiples of pulse it sends what is queued at that moment, back to
	// back; a request arriving later waits for the next pump, even while
	// the batch is still being sent (transmission pumps its peers every
	// 500 ms and writes a batch into its buffer at once).
	pulse time.Duration
}

// simReaderSpec describes one reader.
type simReaderSpec struct {
	open      time.Duration
	bitrate   float64 // bytes/s; 0 = copy as fast as possible
	seekEvery time.Duration
	seeks     int // how many seeks, then play on
	media     bool
	from, to  float64 // the file, as fractions of the torrent; to 0 means 1
}

type simScenario struct {
	name     string
	pieceLen int64
	pieces   int
	peers    []simPeerSpec
	readers  []simReaderSpec
	policy   Policy
	limit    time.Duration // simulated time bound
	seed     uint64
}

// simResult is what one run measured.
type simResult struct {
	ttfbOpen  time.Duration   // first reader: open to first byte
	ttfbSeeks []time.Duration // first reader: seek to first byte, each seek
	stalls    int             // buffer underruns during playback (all players)
	stallTime time.Duration
	copyTime  time.Duration // copiers: open to last byte (max)
	complete  time.Duration // all pieces verified; limit if never
	completed bool
	wasted    int64  // bytes received that were not useful
	fetched   int64  // useful bytes received
	why       [4]int // wasted blocks: piece had, block had, withdrawn, other
	events    int
	stats     counters
}

const (
	simChunk      = 128 << 10 // read size, as FUSE sends
	simTick       = 20 * time.Millisecond
	simEngineTick = time.Second
	simPlayOn     = 10 * time.Second // players play this long after their last seek
)

type evKind uint8

const (
	evReqArrive evKind = iota // our request reaches the peer
	evCancelArrive
	evSendDone // peer finished sending a block
	evBlock    // block reaches us
	evJoin     // peer connects
	evLeave    // peer disconnects
	evGrow     // a leecher gains a piece
	evTick     // engine tick (timeouts) and player clocks
	evOpen     // reader opens
	evPump     // a pulse peer starts a batch
)

type event struct {
	at   time.Duration
	seq  uint64
	kind evKind
	peer int
	sess int // peer session the event belongs to
	req  Request
	rd   int
}

type evHeap []event

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *evHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type simPeer struct {
	spec    simPeerSpec
	id      PeerID
	online  bool
	sess    int
	has     bitset
	nHas    int
	queue   []Request
	sending bool
	tokens  float64       // limiter quota (burst peers)
	refill  time.Duration // last quota hand-out
	batch   int           // pulse peers: requests left in the current batch
	pumping bool          // pulse peers: a pump is scheduled
}

type simReader struct {
	spec       simReaderSpec
	id         ReaderID
	opened     bool
	start, end int64
	pos        int64 // next read offset
	pending    bool
	pOff       int64
	pN         int
	buffered   float64
	playing    bool
	starting   bool // first byte came, buffering to start playback
	stalled    bool
	stallAt    time.Duration
	waitFirst  bool // after open or seek, until the first read returns
	waitSince  time.Duration
	isSeek     bool
	nextSeek   time.Duration
	nSeeks     int
	done       bool
}

type sim struct {
	sc      simScenario
	strat   strategy
	rng     *rand.Rand // piece sets and leecher growth
	churn   *rand.Rand // sessions: independent of picking, same in every run
	seeks   *rand.Rand // seek targets: same in every run
	p       *Picker
	now     time.Duration
	seq     uint64
	ev      evHeap
	peers   []*simPeer
	readers []*simReader
	res     simResult
	nextID  PeerID
	trace   func(format string, args ...any)
}

func (s *sim) tracef(format string, args ...any) {
	if s.trace != nil {
		s.trace("%8.3f "+format, append([]any{s.now.Seconds()}, args...)...)
	}
}

func runSim(sc simScenario, strat strategy) simResult {
	return runSimTrace(sc, strat, nil)
}

func runSimTrace(sc simScenario, strat strategy, trace func(string, ...any)) simResult {
	if sc.policy == OnlyWanted {
		sc.limit = min(sc.limit, 10*time.Minute)
	}
	s := &sim{sc: sc, strat: strat, trace: trace,
		rng:   rand.New(rand.NewPCG(sc.seed, 1)),
		churn: rand.New(rand.NewPCG(sc.seed, 2)),
		seeks: rand.New(rand.NewPCG(sc.seed, 3)),
	}
	total := int64(sc.pieces) * sc.pieceLen
	s.p = New(Config{NumPieces: sc.pieces, PieceLength: sc.pieceLen, TotalLength: total,
		Background: sc.policy, Seed: sc.seed})
	s.p.strategy = strat
	for i, spec := range sc.peers {
		sp := &simPeer{spec: spec, has: newBitset(sc.pieces)}
		if spec.frac >= 1 {
			for j := 0; j < sc.pieces; j++ {
				sp.has.set(j)
			}
		} else {
			for j := 0; j < sc.pieces; j++ {
				if s.rng.Float64() < spec.frac {
					sp.has.set(j)
				}
			}
		}
		sp.nHas = sp.has.count()
		s.peers = append(s.peers, sp)
		s.push(event{at: spec.join, kind: evJoin, peer: i})
		if spec.frac < 1 && spec.grow > 0 {
			s.push(event{at: spec.join + expDur(s.rng, time.Duration(float64(time.Second)/spec.grow)), kind: evGrow, peer: i})
		}
	}
	for i, spec := range sc.readers {
		s.readers = append(s.readers, &simReader{spec: spec})
		s.push(event{at: spec.open, kind: evOpen, rd: i})
	}
	s.push(event{at: simTick, kind: evTick})
	s.res.complete = sc.limit
	for s.ev.Len() > 0 {
		e := heap.Pop(&s.ev).(event)
		if e.at > sc.limit {
			break
		}
		s.now = e.at
		s.res.events++
		s.handle(e)
		if s.finished() {
			break
		}
	}
	// Close an open stall at the end.
	for _, r := range s.readers {
		if r.stalled {
			s.res.stallTime += s.now - r.stallAt
		}
	}
	s.res.stats = s.p.stats
	return s.res
}

func (s *sim) finished() bool {
	if s.p.NumHave() < s.sc.pieces && s.sc.policy == All {
		return false
	}
	for _, r := range s.readers {
		if !r.opened || r.spec.bitrate == 0 && !r.done {
			return false
		}
		// Players: every seek done and played on for a while after it.
		if r.spec.bitrate > 0 && !r.done && (r.nSeeks < r.spec.seeks || r.waitFirst || s.now < r.waitSince+simPlayOn) {
			return false
		}
	}
	return true
}

func (s *sim) push(e event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.ev, e)
}

func (s *sim) wall() time.Time { return t0.Add(s.now) }

func expDur(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

func (s *sim) handle(e event) {
	switch e.kind {
	case evJoin:
		s.join(e.peer)
	case evLeave:
		if s.peers[e.peer].sess == e.sess {
			s.leave(e.peer)
		}
	case evGrow:
		s.grow(e.peer)
	case evReqArrive:
		sp := s.peers[e.peer]
		if sp.online && sp.sess == e.sess {
			sp.queue = append(sp.queue, e.req)
			s.serve(e.peer)
		}
	case evCancelArrive:
		sp := s.peers[e.peer]
		if sp.online && sp.sess == e.sess {
			var ahead int64
			for i, q := range sp.queue {
				if q == e.req && ahead >= sp.spec.committed {
					sp.queue = append(sp.queue[:i], sp.queue[i+1:]...)
					break
				}
				ahead += int64(q.Length)
			}
		}
	case evSendDone:
		sp := s.peers[e.peer]
		if sp.online && sp.sess == e.sess {
			sp.sending = false
			s.push(event{at: s.now + sp.spec.lat, kind: evBlock, peer: e.peer, sess: e.sess, req: e.req})
			s.serve(e.peer)
		}
	case evBlock:
		s.block(e)
	case evTick:
		s.tick()
	case evOpen:
		s.open(e.rd)
	case evPump:
		sp := s.peers[e.peer]
		if sp.online && sp.sess == e.sess {
			sp.pumping = false
			sp.batch = len(sp.queue)
			s.serve(e.peer)
		}
	}
}

func (s *sim) serve(i int) {
	sp := s.peers[i]
	if sp.sending || len(sp.queue) == 0 {
		return
	}
	if p := sp.spec.pulse; p > 0 {
		if sp.batch = min(sp.batch, len(sp.queue)); sp.batch == 0 {
			if !sp.pumping {
				sp.pumping = true
				s.push(event{at: s.now + p - s.now%p, kind: evPump, peer: i, sess: sp.sess})
			}
			return
		}
		sp.batch--
	}
	r := sp.queue[0]
	sp.queue = sp.queue[1:]
	sp.sending = true
	d := time.Duration(float64(r.Length) / sp.spec.rate * float64(time.Second))
	if b := sp.spec.burst; b > 0 {
		// Quota arrives at multiples of b; a block goes out at line speed
		// (20 times the cap) once the quota covers it.
		quantum := sp.spec.rate * b.Seconds()
		n := (s.now - sp.refill) / b
		sp.tokens = min(sp.tokens+float64(n)*quantum, 2*quantum)
		sp.refill += n * b
		start := s.now
		if need := float64(r.Length) - sp.tokens; need > 0 {
			k := time.Duration(math.Ceil(need / quantum))
			sp.tokens += float64(k) * quantum
			sp.refill += k * b
			start = sp.refill
		}
		sp.tokens -= float64(r.Length)
		d = start - s.now + d/20
	}
	s.push(event{at: s.now + d, kind: evSendDone, peer: i, sess: sp.sess, req: r})
}

func (s *sim) join(i int) {
	sp := s.peers[i]
	sp.online = true
	sp.sess++
	sp.queue, sp.sending, sp.batch, sp.pumping = nil, false, 0, false
	s.nextID++
	sp.id = s.nextID
	s.p.AddPeer(sp.id)
	if sp.nHas == s.sc.pieces {
		s.p.PeerHaveAll(sp.id)
	} else {
		bf := make([]byte, (s.sc.pieces+7)/8)
		for j := 0; j < s.sc.pieces; j++ {
			if sp.has.get(j) {
				bf[j/8] |= 0x80 >> (j % 8)
			}
		}
		s.p.PeerBitfield(sp.id, bf)
	}
	s.p.PeerChoked(sp.id, false)
	if sp.spec.session > 0 {
		s.push(event{at: s.now + expDur(s.churn, sp.spec.session), kind: evLeave, peer: i, sess: sp.sess})
	}
	s.fill(i)
}

func (s *sim) leave(i int) {
	sp := s.peers[i]
	if !sp.online {
		return
	}
	sp.online = false
	sp.queue, sp.sending = nil, false
	s.p.RemovePeer(sp.id)
	s.push(event{at: s.now + expDur(s.churn, sp.spec.offline), kind: evJoin, peer: i})
	s.fillAll()
}

// grow gives a leecher one more piece, chosen among the pieces some other
// online peer (or we) could have given it.
func (s *sim) grow(i int) {
	sp := s.peers[i]
	if sp.nHas < s.sc.pieces {
		for try := 0; try < 8; try++ {
			j := s.rng.IntN(s.sc.pieces)
			if sp.has.get(j) || !s.available(j, i) {
				continue
			}
			sp.has.set(j)
			sp.nHas++
			if sp.online {
				s.p.PeerHave(sp.id, j)
			}
			break
		}
		s.push(event{at: s.now + expDur(s.rng, time.Duration(float64(time.Second)/sp.spec.grow)), kind: evGrow, peer: i})
	}
}

func (s *sim) available(j, except int) bool {
	if s.p.Have(j) {
		return true
	}
	for k, o := range s.peers {
		if k != except && o.online && o.has.get(j) {
			return true
		}
	}
	return false
}

// fill tops up peer i's pipeline the way the engine does: about a second
// of its rate in flight, at least 32 requests.
func (s *sim) fill(i int) {
	sp := s.peers[i]
	if !sp.online {
		return
	}
	pipeline := max(32, int(sp.spec.rate/float64(DefaultBlockSize))+16)
	free := pipeline - s.p.Outstanding(sp.id)
	if free <= 0 {
		return
	}
	reqs := s.p.Next(sp.id, s.wall(), free)
	if len(reqs) > 0 {
		s.tracef("next peer %d free %d -> %d from pieces %v", sp.id, free, len(reqs), pieces(reqs))
	}
	for _, r := range reqs {
		s.push(event{at: s.now + sp.spec.lat, kind: evReqArrive, peer: i, sess: sp.sess, req: r})
	}
}

func (s *sim) fillAll() {
	for i := range s.peers {
		s.fill(i)
	}
}

func (s *sim) peerIndex(id PeerID) int {
	for i, sp := range s.peers {
		if sp.online && sp.id == id {
			return i
		}
	}
	return -1
}

// sendCancels delivers CANCELs for withdrawn requests.
func (s *sim) sendCancels(cs []PeerRequest) {
	if len(cs) > 0 {
		s.tracef("cancel %d %v", len(cs), cs[0])
	}
	for _, c := range cs {
		if i := s.peerIndex(c.Peer); i >= 0 {
			sp := s.peers[i]
			s.push(event{at: s.now + sp.spec.lat, kind: evCancelArrive, peer: i, sess: sp.sess, req: c.Request})
		}
	}
}

func (s *sim) block(e event) {
	sp := s.peers[e.peer]
	if !sp.online || sp.sess != e.sess {
		return
	}
	why := 3
	if s.p.Have(e.req.Piece) {
		why = 0
	} else if pa := s.p.partOf(e.req.Piece); pa != nil && pa.blocks[int(e.req.Begin)/DefaultBlockSize].recv {
		why = 1
	} else if _, ok := s.p.peer(sp.id).out[s.p.key(e.req.Piece, int(e.req.Begin)/DefaultBlockSize)]; !ok {
		why = 2
	}
	cancels, useful := s.p.BlockReceived(sp.id, e.req, s.wall())
	if !useful {
		s.res.why[why]++
	}
	if s.p.isUrgent(e.req.Piece) {
		s.tracef("urgent block %v from %d useful %v cancels %v", e.req, sp.id, useful, cancels)
	}
	if useful {
		s.res.fetched += int64(e.req.Length)
	}
	if !useful {
		s.res.wasted += int64(e.req.Length)
	}
	s.sendCancels(cancels)
	if useful {
		if pa := s.p.partOf(e.req.Piece); pa != nil && pa.nRecv == len(pa.blocks) {
			s.p.SetHave(e.req.Piece)
			s.tracef("have %d", e.req.Piece)
			if s.p.NumHave() == s.sc.pieces {
				s.res.complete, s.res.completed = s.now, true
			}
			s.sendCancels(s.p.Cancels())
			s.checkReads()
			s.fillAll()
			return
		}
	}
	s.fill(e.peer)
}

func (s *sim) tick() {
	for _, r := range s.readers {
		s.play(r, simTick)
	}
	if s.now%simEngineTick < simTick {
		s.sendCancels(s.p.Timeouts(s.wall()))
		s.fillAll()
	}
	s.push(event{at: s.now + simTick, kind: evTick})
}
