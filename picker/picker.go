package picker

import (
	"time"
)

// PeerID is the engine's handle for one connection, unique within a torrent.
type PeerID int

// ReaderID names one open reader (file handle); the picker assigns it.
type ReaderID int

// Request names one block: Length bytes at Begin within piece Piece.
type Request struct {
	Piece         int
	Begin, Length uint32
}

// PeerRequest is a block request addressed to a peer.
type PeerRequest struct {
	Peer PeerID
	Request
}

// Policy says what the picker downloads when no reader is waiting.
type Policy int

const (
	// OnlyWanted downloads only what readers want: pieces under pending
	// reads, readahead windows and the head and tail of media files.
	OnlyWanted Policy = iota
	// All also downloads the rest of the wanted files, rarest first.
	All
)

// Defaults for zero Config fields.
const (
	DefaultBlockSize      = 16 << 10
	DefaultMaxWindowBytes = 256 << 20
)

// Config describes the torrent's geometry and the picker's limits.
type Config struct {
	NumPieces   int   // 0: derived from TotalLength and PieceLength
	PieceLength int64 // nominal piece size; the last piece may be shorter
	TotalLength int64 // 0: NumPieces*PieceLength
	BlockSize   int   // request size; 0 means DefaultBlockSize
	Background  Policy
	// MaxWindowBytes caps the sum of all readahead windows and pins, so a
	// cache of that size never has to evict a pinned piece. Derive it from
	// the cache capacity (half of it is a good choice). 0 means
	// DefaultMaxWindowBytes. Pieces under pending reads are always pinned,
	// even past the cap.
	MaxWindowBytes int64
	// Seed makes tie-breaks among equally rare pieces differ between
	// clients (so a swarm does not all chase the same piece) while keeping
	// one picker deterministic. 0 is a fixed default.
	Seed uint64
}

// strategy selects the whole picking strategy. Only the simulator uses the
// non-default values, as baselines.
type strategy int

const (
	stratStreaming  strategy = iota // this package's design
	stratRarest                     // plain rarest-first, blind to readers
	stratSequential                 // lowest missing piece first, blind to readers
)

// Picker decides which blocks to request from which peer. It is not safe
// for concurrent use: the torrent's loop owns it. It performs no I/O and
// starts no goroutines; every method returns promptly.
type Picker struct {
	// clock is the latest time a caller passed in (unix nanos): what
	// internal decisions without a time argument take as now.
	clock int64
	// lastWant is the clock at the last reader activity (open, read,
	// close), or at the first time seen: under OnlyWanted, interest in
	// peers lingers interestLinger after it (see Interesting).
	lastWant int64

	// Geometry, read-only after New.
	n         int
	pieceLen  int64
	total     int64
	blk       int64
	blocksPer int // blocks in a full piece
	policy    Policy
	maxWindow int64
	strategy  strategy

	epoch    time.Time
	epochSet bool

	// Piece state.
	have          bitset
	numHave       int
	busy          bitset // have, or every block received or outstanding
	wanted        bitset // file selection (All policy)
	wantedMissing int    // |wanted ∩ ¬have|
	avail         []uint16
	rar           rarity

	// Pieces being downloaded.
	pidx  []int32 // piece -> index in parts, or -1
	parts []*partial
	open  []*partial // parts with unrequested blocks
	free  []*partial
	// solo: pieces to be fetched again from one peer alone (Solo), with
	// that peer once one took a block (noOwner until then).
	solo map[int]PeerID

	// Peers, in a slice for deterministic iteration.
	peers    []*peer
	peerIdx  map[PeerID]int
	numSeeds int
	rank     rankCache
	prior    prior
	// outBytes is the sum of the counted peers' outBytes (all but those
	// given to Uncount): OutstandingBytes in O(1), for an engine that
	// checks its in-flight budget before every request it sends.
	outBytes int64

	// Readers.
	readers      []*reader
	active       []*reader // readers with a window or head/tail, by id
	readerIdx    map[ReaderID]int
	nextReader   ReaderID
	urgent       []urgentEntry // pending-read pieces by read time; rebuilt when urgentDirty
	urgentDirty  bool
	urgentSet    bitset
	urgentIdx    map[int]int32 // piece -> index in urgent
	hotSet       bitset        // pinned pieces, valid when hotVer == pinVersion
	hotVer       uint64
	hotLo, hotHi int // bounds of hotSet's bits
	headTailUsed int64
	sumTarget    int64
	pinVersion   uint64

	swarmRate float64 // from SetRate; 0 = measure

	cancels []PeerRequest // withdrawn requests the engine must cancel

	stats counters
}

// counters count decisions, for tests and the simulator's table.
type counters struct {
	dupLate, dupEndgame, withdrawn, timedOut int
}

// Counters are what the picker decided so far that costs bandwidth: blocks
// asked of a second peer (late urgent blocks, endgame), requests withdrawn
// (to be cancelled) and requests that timed out.
type Counters struct {
	DupLate    int `json:"dup_late"`
	DupEndgame int `json:"dup_endgame"`
	Withdrawn  int `json:"withdrawn"`
	TimedOut   int `json:"timed_out"`
}

// Counters returns the counts so far.
func (p *Picker) Counters() Counters {
	return Counters{p.stats.dupLate, p.stats.dupEndgame, p.stats.withdrawn, p.stats.timedOut}
}

// New returns a picker for a torrent with the given geometry. Zero fields
// take the documented defaults; inconsistent geometry is repaired rather
// than rejected (NumPieces wins over TotalLength).
func New(cfg Config) *Picker {
	if cfg.PieceLength <= 0 {
		cfg.PieceLength = DefaultBlockSize
		if cfg.NumPieces > 0 && cfg.TotalLength > 0 {
			cfg.PieceLength = (cfg.TotalLength + int64(cfg.NumPieces) - 1) / int64(cfg.NumPieces)
		}
	}
	if cfg.NumPieces <= 0 {
		cfg.NumPieces = int((cfg.TotalLength + cfg.PieceLength - 1) / cfg.PieceLength)
	}
	if cfg.NumPieces < 0 {
		cfg.NumPieces = 0
	}
	n := cfg.NumPieces
	if cfg.TotalLength <= int64(n-1)*cfg.PieceLength || cfg.TotalLength > int64(n)*cfg.PieceLength {
		cfg.TotalLength = int64(n) * cfg.PieceLength
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	blk := int64(cfg.BlockSize)
	if blk > cfg.PieceLength {
		blk = cfg.PieceLength
	}
	if cfg.MaxWindowBytes <= 0 {
		cfg.MaxWindowBytes = DefaultMaxWindowBytes
	}
	p := &Picker{
		n:          n,
		pieceLen:   cfg.PieceLength,
		total:      cfg.TotalLength,
		blk:        blk,
		blocksPer:  int((cfg.PieceLength + blk - 1) / blk),
		policy:     cfg.Background,
		maxWindow:  cfg.MaxWindowBytes,
		have:       newBitset(n),
		busy:       newBitset(n),
		wanted:     newBitset(n),
		avail:      make([]uint16, n),
		pidx:       make([]int32, n),
		peerIdx:    make(map[PeerID]int),
		readerIdx:  make(map[ReaderID]int),
		urgentSet:  newBitset(n),
		urgentIdx:  make(map[int]int32),
		hotSet:     newBitset(n),
		hotLo:      n,
		hotHi:      -1,
		nextReader: 1,
	}
	for i := range p.pidx {
		p.pidx[i] = -1
		p.wanted.set(i)
	}
	p.wantedMissing = n
	p.rar.init(n, cfg.Seed)
	p.prior = prior{rate: defaultRate, lat: defaultLat.Seconds()}
	return p
}

// ts converts a caller's time to nanoseconds since the first time seen.
func (p *Picker) ts(now time.Time) int64 {
	if !p.epochSet {
		p.epoch, p.epochSet = now, true
	}
	return int64(now.Sub(p.epoch))
}

func (p *Picker) validPiece(i int) bool { return i >= 0 && i < p.n }

// pieceSize is the length of piece i in bytes.
func (p *Picker) pieceSize(i int) int64 {
	if i == p.n-1 {
		return p.total - int64(i)*p.pieceLen
	}
	return p.pieceLen
}

func (p *Picker) numBlocks(i int) int { return int((p.pieceSize(i) + p.blk - 1) / p.blk) }

func (p *Picker) blockReq(piece, b int) Request {
	begin := int64(b) * p.blk
	l := min(p.blk, p.pieceSize(piece)-begin)
	return Request{Piece: piece, Begin: uint32(begin), Length: uint32(l)}
}

// blockOf checks r against the geometry and returns its block index.
func (p *Picker) blockOf(r Request) (int, bool) {
	if !p.validPiece(r.Piece) || int64(r.Begin)%p.blk != 0 {
		return 0, false
	}
	b := int(int64(r.Begin) / p.blk)
	if b >= p.numBlocks(r.Piece) || r != p.blockReq(r.Piece, b) {
		return 0, false
	}
	return b, true
}

func (p *Picker) key(piece, b int) int64 { return int64(piece)*int64(p.blocksPer) + int64(b) }

func (p *Picker) unkey(k int64) (piece, b int) {
	return int(k / int64(p.blocksPer)), int(k % int64(p.blocksPer))
}

// pieceOf returns the piece holding torrent offset off, clamped to the torrent.
func (p *Picker) pieceOf(off int64) int {
	if off <= 0 || p.n == 0 {
		return 0
	}
	i := int(off / p.pieceLen)
	return min(i, p.n-1)
}

// SetHave records that piece is verified and stored.
func (p *Picker) SetHave(piece int) {
	if !p.validPiece(piece) || p.have.get(piece) {
		return
	}
	if pa := p.partOf(piece); pa != nil {
		p.withdrawAll(pa) // duplicate requests still out: the engine cancels them
		p.dropPart(pa)
	}
	delete(p.solo, piece)
	p.have.set(piece)
	p.busy.set(piece)
	p.numHave++
	if p.wanted.get(piece) {
		p.wantedMissing--
		p.peerWantedDelta(piece, -1)
	}
	p.rar.setKey(piece, 0)
	// The urgent list keeps its entry (every use skips pieces we have);
	// rebuilding it for each verified piece would cost O(pending reads).
	p.urgentSet.clear(piece)
}

// Have reports whether piece is verified and stored.
func (p *Picker) Have(piece int) bool { return p.validPiece(piece) && p.have.get(piece) }

// NumHave returns the number of verified pieces.
func (p *Picker) NumHave() int { return p.numHave }

// Lost records that piece left the cache; readers that need it again make
// it wanted again, and so does the All policy.
func (p *Picker) Lost(piece int) {
	if !p.validPiece(piece) || !p.have.get(piece) {
		return
	}
	p.have.clear(piece)
	p.busy.clear(piece)
	p.numHave--
	if p.wanted.get(piece) {
		p.wantedMissing++
		p.peerWantedDelta(piece, +1)
	}
	p.rar.setKey(piece, p.rarKey(piece))
	p.urgentDirty = true
}

// PieceFailed records a failed hash check: every block of piece is
// requestable again. Until SetHave or PieceFailed, a piece whose every
// block arrived is requested by nobody: the engine keeps a piece its store
// refused in that state until it may try again.
func (p *Picker) PieceFailed(piece int) {
	if !p.validPiece(piece) || p.have.get(piece) {
		return
	}
	pa := p.partOf(piece)
	if pa == nil {
		return
	}
	pa.reset()
	p.updatePart(pa)
}

// Solo has piece fetched again from a single peer: the peer that takes a
// block of it first takes all it can and no one else, duplicates
// included, takes any while that peer stays unchoked and has it. Call it
// after PieceFailed for a piece that several peers sent: the next copy
// either verifies, and then the blocks the senders of the failed copy
// sent can be compared with it, or fails with one sender, the liar. Shared
// again among peers, as urgent pieces are, a liar taking part in every
// copy would fail them all, and the honest senders with it. Cleared when
// the piece is had.
func (p *Picker) Solo(piece int) {
	if !p.validPiece(piece) || p.have.get(piece) {
		return
	}
	if p.solo == nil {
		p.solo = make(map[int]PeerID)
	}
	p.solo[piece] = noOwner
}

// isSolo reports whether piece is to come from one peer alone.
func (p *Picker) isSolo(piece int) bool {
	_, ok := p.solo[piece]
	return ok
}

// noOwner is a solo piece's owner before any peer took a block of it.
const noOwner PeerID = -1 << 31

// soloFor reports whether piece is solo and, if so, whether pe may take
// blocks of it: pe owns it, or nobody does, and then pe becomes the owner.
// An owner that left, choked us, no longer has the piece or holds none of
// its blocks outstanding (they timed out, or it refused them) owns it no
// more: a peer that stalls must not hold the piece for ever. The owner
// asks for its next blocks as the last ones arrive, in the same turn of
// the engine's loop, so no one else takes over in between.
func (p *Picker) soloFor(piece int, pe *peer) (solo, may bool) {
	owner, ok := p.solo[piece]
	if !ok {
		return false, true
	}
	if owner != pe.id {
		if o := p.peer(owner); o != nil && !o.choked && o.hasPiece(piece) && p.holdsAny(piece, owner) {
			return true, false
		}
		p.solo[piece] = pe.id
	}
	return true, true
}

// holdsAny reports whether id has a block of piece outstanding.
func (p *Picker) holdsAny(piece int, id PeerID) bool {
	pa := p.partOf(piece)
	if pa == nil {
		return false
	}
	for b := range pa.blocks {
		if holds(&pa.blocks[b], id) {
			return true
		}
	}
	return false
}

// SetBackground changes the background policy: the engine pauses
// downloading everything (All to OnlyWanted) while its cache is full, and
// resumes it when space frees. Switching to OnlyWanted withdraws queued
// requests no reader wants (drain Cancels), so the transfer stops soon;
// readers are served as before.
func (p *Picker) SetBackground(policy Policy) {
	if p.policy == policy {
		return
	}
	p.policy = policy
	p.releaseUnwanted()
}

// Background returns the current background policy.
func (p *Picker) Background() Policy { return p.policy }

// SetWanted selects (or deselects) the pieces overlapping torrent bytes
// [start, end) for the All policy. Readers are served whatever this says.
func (p *Picker) SetWanted(start, end int64, wanted bool) {
	if p.n == 0 || end <= start || end <= 0 || start >= p.total {
		return
	}
	first, last := p.pieceOf(start), p.pieceOf(end-1)
	changed := false
	for i := first; i <= last; i++ {
		if p.wanted.get(i) == wanted {
			continue
		}
		changed = true
		if wanted {
			p.wanted.set(i)
			if !p.have.get(i) {
				p.wantedMissing++
			}
		} else {
			p.wanted.clear(i)
			if !p.have.get(i) {
				p.wantedMissing--
			}
		}
		p.rar.setKey(i, p.rarKey(i))
	}
	if changed {
		for _, pe := range p.peers {
			pe.recountWanted(p)
		}
	}
}

// rarKey is piece's bucket in the rarity order: 0 for pieces the
// background policy never starts, else 1+availability (capped).
func (p *Picker) rarKey(piece int) uint8 {
	if p.have.get(piece) || !p.wanted.get(piece) || p.pidx[piece] >= 0 {
		return 0
	}
	a := int(p.avail[piece])
	if a > maxRarKey-1 {
		a = maxRarKey - 1
	}
	return uint8(1 + a)
}

// tick advances the picker's clock to now; time never runs backwards.
func (p *Picker) tick(now time.Time) {
	if n := now.UnixNano(); n > p.clock {
		p.clock = n
	}
	if p.lastWant == 0 {
		p.lastWant = p.clock // a fresh torrent: its first read is near
	}
}
