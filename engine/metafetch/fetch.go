package metafetch

import (
	"hash/crc32"
	"net/netip"
	"slices"
	"time"
)

// PieceSize is the size of every ut_metadata piece but the last (BEP 9).
const PieceSize = 16 << 10

const (
	// requestTimeout is how long a piece may stay unanswered before it is
	// asked of another peer.
	requestTimeout = 10 * time.Second
	// skipFor is how long a peer that rejected a request, let one time
	// out or claimed another size in its answer is passed over.
	skipFor = 30 * time.Second
	// perSupplier bounds the pieces asked of the one supplier of an
	// attempt at a time (see PerPeer).
	perSupplier = 16
	// maxMarkCopies bounds the failed copies whose marks are kept.
	maxMarkCopies = 4
)

// PerPeer bounds the pieces asked of one peer at a time when several
// share the work.
const PerPeer = 4

// PeerID names a peer; the caller chooses the values.
type PeerID int

// Config configures a Fetch.
type Config struct {
	// MaxSize bounds the dictionary: larger claims are ignored.
	MaxSize int
	// Strikes returns the failures a peer was involved in; among peers
	// otherwise equal, fewer strikes go first. Nil counts none.
	Strikes func(netip.Addr) int
}

// Request asks Peer for piece Piece.
type Request struct {
	Peer  PeerID
	Piece int
}

// Mark is what one peer sent for one piece of a copy.
type Mark struct {
	Piece int
	From  netip.Addr
	Sum   uint32 // CRC-32 (IEEE) of the piece
}

// Failure is the verdict on a copy that failed its check.
type Failure struct {
	// Culprit is the sole sender of the copy, if it had one: the caller
	// bans it.
	Culprit netip.Addr
	// Senders are the senders of a copy that had several: each gets a
	// strike. Sorted.
	Senders []netip.Addr
	// Next is a dictionary offered while the copy was checked (Offer), to
	// be checked now; nil if none.
	Next []byte
}

type peerState struct {
	id        PeerID
	addr      netip.Addr
	size      int // the metadata_size it claims; 0 for none
	out       int // pieces asked of it and not answered
	skipUntil time.Time
	gone      bool
}

// Fetch is the download of one info dictionary. The zero value is not
// usable; call New.
type Fetch struct {
	cfg   Config
	peers map[PeerID]*peerState
	order []*peerState // in the order added

	// The current attempt.
	size     int          // bytes being fetched; 0 until chosen
	pieces   [][]byte     // received pieces; nil while missing
	from     []netip.Addr // the sender of each received piece
	asked    []*peerState // who each missing piece is asked of; nil if nobody
	askedAt  []time.Time
	got      int        // pieces received
	out      int        // requests in flight
	supplier *peerState // the one supplier of this attempt, when single

	busy    bool   // a copy is being checked
	dead    bool   // the info-hash names an unusable dictionary: stop
	single  bool   // a copy failed: one supplier per attempt from now on
	marks   []Mark // of failed copies with several senders
	offered []byte // offered while busy
}

// New returns a fetch that has not started.
func New(cfg Config) *Fetch {
	return &Fetch{cfg: cfg, peers: make(map[PeerID]*peerState)}
}

// NumPieces is the number of pieces of a size-byte dictionary.
func NumPieces(size int) int { return (size + PieceSize - 1) / PieceSize }

// SetPeer adds a peer, or updates the size it claims (its extension
// handshake may come again). size is 0 for a peer that does not speak
// ut_metadata or claims no size.
func (f *Fetch) SetPeer(id PeerID, addr netip.Addr, size int) {
	if p := f.peers[id]; p != nil {
		p.size = size
		return
	}
	p := &peerState{id: id, addr: addr, size: size}
	f.peers[id] = p
	f.order = append(f.order, p)
}

// RemovePeer forgets a peer and releases the pieces asked of it; true if
// there were any (Next may ask them of others now).
func (f *Fetch) RemovePeer(id PeerID) bool {
	p := f.peers[id]
	if p == nil {
		return false
	}
	had := p.out > 0
	for i, a := range f.asked {
		if a == p {
			f.unask(i)
		}
	}
	p.gone = true
	delete(f.peers, id)
	f.order = slices.DeleteFunc(f.order, func(q *peerState) bool { return q == p })
	return had
}

// Out is the number of pieces asked of a peer and not answered yet.
func (f *Fetch) Out(id PeerID) int {
	if p := f.peers[id]; p != nil {
		return p.out
	}
	return 0
}

// Next hands out missing pieces to the peers that can be asked now and
// returns the requests to send.
func (f *Fetch) Next(now time.Time) []Request {
	if f.busy || f.dead {
		return nil
	}
	if f.size != 0 && f.out == 0 && !f.anyEligible(now) {
		// Nobody who claims the size being fetched can be asked now:
		// start over with the other claims.
		f.reset()
	}
	if f.size == 0 && !f.chooseSize(now) {
		return nil
	}
	if f.single {
		return f.nextSingle(now)
	}
	var reqs []Request
	for i := range f.pieces {
		if f.pieces[i] != nil || f.asked[i] != nil {
			continue
		}
		var best *peerState
		for _, p := range f.order {
			if p.out >= PerPeer || !f.eligible(p, now) {
				continue
			}
			if best == nil || p.out < best.out || p.out == best.out && f.strikes(p) < f.strikes(best) {
				best = p
			}
		}
		if best == nil {
			break
		}
		reqs = append(reqs, f.ask(best, i, now))
	}
	return reqs
}

// nextSingle asks one peer for every piece: the one supplying this
// attempt, else the eligible peer with the fewest strikes. A supplier that
// can no longer be asked ends the attempt.
func (f *Fetch) nextSingle(now time.Time) []Request {
	sup := f.supplier
	if sup != nil && !f.eligible(sup, now) {
		f.reset()
		if !f.chooseSize(now) {
			return nil
		}
		sup = nil
	}
	if sup == nil {
		for _, p := range f.order {
			if f.eligible(p, now) && (sup == nil || f.strikes(p) < f.strikes(sup)) {
				sup = p
			}
		}
		if sup == nil {
			return nil
		}
		f.supplier = sup
	}
	var reqs []Request
	for i := range f.pieces {
		if sup.out >= perSupplier {
			break
		}
		if f.pieces[i] == nil && f.asked[i] == nil {
			reqs = append(reqs, f.ask(sup, i, now))
		}
	}
	return reqs
}

// Expire releases the pieces unanswered for requestTimeout; their peers
// are passed over for a while. Call it every second or so, then Next.
func (f *Fetch) Expire(now time.Time) {
	for i, p := range f.asked {
		if p != nil && now.Sub(f.askedAt[i]) > requestTimeout {
			p.skipUntil = now.Add(skipFor)
			f.unask(i)
		}
	}
}

// Rejected notes a peer's reject of a piece; true if the piece was asked
// of it (then Next asks another).
func (f *Fetch) Rejected(id PeerID, piece int, now time.Time) bool {
	p := f.peers[id]
	if p == nil || piece < 0 || piece >= len(f.asked) || f.asked[piece] != p {
		return false
	}
	f.unask(piece)
	p.skipUntil = now.Add(skipFor)
	return true
}

// Received takes a piece a peer sent, with the total size its message
// claims; Received keeps data. asked reports whether the piece was asked
// of that peer (else the message is late, or unasked, and changes
// nothing); complete whether the copy is now whole (see Assemble).
func (f *Fetch) Received(id PeerID, piece, total int, data []byte, now time.Time) (asked, complete bool) {
	p := f.peers[id]
	if f.busy || p == nil || piece < 0 || piece >= len(f.asked) || f.asked[piece] != p {
		return false, false
	}
	f.unask(piece)
	if total != f.size {
		p.skipUntil = now.Add(skipFor)
		return true, false
	}
	f.pieces[piece], f.from[piece] = data, p.addr
	f.got++
	return true, f.got == len(f.pieces)
}

// Assemble returns the complete copy and who sent each piece of it.
func (f *Fetch) Assemble() ([]byte, []Mark) {
	buf := make([]byte, 0, f.size)
	marks := make([]Mark, 0, len(f.pieces))
	for i, p := range f.pieces {
		buf = append(buf, p...)
		marks = append(marks, Mark{Piece: i, From: f.from[i], Sum: crc32.ChecksumIEEE(p)})
	}
	return buf, marks
}

// BeginCheck notes that a copy (assembled, or offered) is being checked:
// until the verdict nothing is asked, and requests in flight are released.
func (f *Fetch) BeginCheck() {
	f.busy = true
	for i := range f.asked {
		f.unask(i)
	}
}

// Offer proposes a dictionary from elsewhere (a .torrent added for the
// same hash). True: check it now (BeginCheck). False: a check is running;
// it is kept and comes back as Failure.Next should that check fail.
func (f *Fetch) Offer(buf []byte) bool {
	if f.busy {
		f.offered = buf
		return false
	}
	return true
}

// Failed is the verdict that a copy with marks (nil for an offered one)
// does not match the info-hash. The attempt is dropped, and from now on
// each attempt has a single supplier.
func (f *Fetch) Failed(marks []Mark) Failure {
	f.busy = false
	var senders []netip.Addr
	for _, mk := range marks {
		if !slices.Contains(senders, mk.From) {
			senders = append(senders, mk.From)
		}
	}
	slices.SortFunc(senders, func(a, b netip.Addr) int { return a.Compare(b) })
	f.single = true
	f.reset()
	var fl Failure
	if len(senders) == 1 {
		fl.Culprit = senders[0]
	} else {
		if len(f.marks)/max(1, len(marks)) < maxMarkCopies {
			f.marks = append(f.marks, marks...)
		}
		fl.Senders = senders
	}
	fl.Next, f.offered = f.offered, nil
	return fl
}

// Unusable is the verdict that the copy matches the info-hash but cannot
// be used (it does not parse, or its storage cannot be opened): no peer can
// do better, so the fetch stops for good.
func (f *Fetch) Unusable() {
	f.busy = false
	f.dead = true
	f.reset()
}

// Liars is the verdict that good is the dictionary: it returns the marks of
// earlier failed copies whose pieces differ from it. The fetch is over.
func (f *Fetch) Liars(good []byte) []Mark {
	f.busy = false
	sums := make([]uint32, NumPieces(len(good)))
	for i := range sums {
		s := i * PieceSize
		sums[i] = crc32.ChecksumIEEE(good[s:min(s+PieceSize, len(good))])
	}
	var liars []Mark
	for _, mk := range f.marks {
		if mk.Piece < len(sums) && mk.Sum != sums[mk.Piece] {
			liars = append(liars, mk)
		}
	}
	return liars
}

// eligible reports whether p can be asked for the size being fetched now.
func (f *Fetch) eligible(p *peerState, now time.Time) bool {
	return !p.gone && p.size == f.size && !now.Before(p.skipUntil)
}

func (f *Fetch) anyEligible(now time.Time) bool {
	for _, p := range f.order {
		if f.eligible(p, now) {
			return true
		}
	}
	return false
}

func (f *Fetch) strikes(p *peerState) int {
	if f.cfg.Strikes == nil {
		return 0
	}
	return f.cfg.Strikes(p.addr)
}

// chooseSize settles the size to fetch: the claim most peers that can be
// asked now make, among those within MaxSize; false if there is none.
func (f *Fetch) chooseSize(now time.Time) bool {
	votes := map[int]int{}
	best := 0
	for _, p := range f.order {
		if p.size <= 0 || p.size > f.cfg.MaxSize || now.Before(p.skipUntil) {
			continue
		}
		votes[p.size]++
		if best == 0 || votes[p.size] > votes[best] {
			best = p.size
		}
	}
	if best == 0 {
		return false
	}
	n := NumPieces(best)
	f.size = best
	f.pieces = make([][]byte, n)
	f.from = make([]netip.Addr, n)
	f.asked = make([]*peerState, n)
	f.askedAt = make([]time.Time, n)
	f.got = 0
	return true
}

func (f *Fetch) ask(p *peerState, i int, now time.Time) Request {
	f.asked[i], f.askedAt[i] = p, now
	f.out++
	p.out++
	return Request{Peer: p.id, Piece: i}
}

// unask forgets that piece i is asked (of whoever).
func (f *Fetch) unask(i int) {
	if p := f.asked[i]; p != nil {
		p.out--
		f.out--
		f.asked[i] = nil
	}
}

// reset drops the current attempt.
func (f *Fetch) reset() {
	for i := range f.asked {
		f.unask(i)
	}
	f.size, f.pieces, f.from, f.asked, f.askedAt, f.got = 0, nil, nil, nil, nil, 0
	f.supplier = nil
}
