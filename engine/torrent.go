package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/tracker"
	"github.com/swarmfs/swarmfs/picker"
)

// Torrent is one torrent in a Client. Its methods are safe for concurrent
// use; its mutable state belongs to its loop goroutine (see the package doc).
type Torrent struct {
	// read-only after construction
	client   *Client
	infoHash metainfo.Hash
	mi       *metainfo.MetaInfo
	opts     TorrentOptions
	info     *metainfo.Info
	store    storage.Torrent
	events   chan func()
	done     chan struct{} // closed when the torrent stops
	ctx      context.Context
	cancel   context.CancelFunc
	closing  sync.Once
	wg       sync.WaitGroup // loop, announcer, dials, hashing
	complete chan struct{}  // closed when every piece is verified

	// published by the loop, read by anyone
	haveBits   []atomic.Uint64
	numHave    atomic.Int64
	bytesHave  atomic.Int64
	downloaded atomic.Int64 // piece payload received, good or not
	uploaded   atomic.Int64

	wakeMu sync.Mutex // guards wakeCh
	wakeCh chan struct{}

	bannedMu sync.Mutex // guards banned; read by the accept path
	banned   map[netip.Addr]bool

	readerMu   sync.Mutex // guards readerOps
	readerOps  []readerOp
	readerPoke chan struct{} // cap 1

	statsMu sync.Mutex // guards stats
	stats   Stats

	// loop-owned
	picker     *picker.Picker
	conns      map[*conn]struct{}
	byID       map[picker.PeerID]*conn
	nextPeerID picker.PeerID
	partial    map[int]*partialPiece
	suspects   map[int][]blockMark // pieces that failed with several contributors
	strikes    map[netip.Addr]int
	candidates map[netip.AddrPort]*candidate
	dialing    int
	readers    map[*Reader]picker.ReaderID
	pinned     map[int]bool
	announcer  *tracker.Announcer
	lastChoke  time.Time
	lastOptim  time.Time
	hashing    int
	isComplete bool
}

// Stats is a snapshot of a torrent's progress, refreshed every second.
type Stats struct {
	Name           string
	InfoHash       metainfo.Hash
	Pieces         int
	PiecesHave     int
	TotalLength    int64
	BytesCompleted int64
	Downloaded     int64
	Uploaded       int64
	DownloadRate   float64 // bytes/s
	UploadRate     float64
	Peers          int
	Seeds          int
	KnownPeers     int
	Complete       bool
}

func newTorrent(c *Client, mi *metainfo.MetaInfo, opts TorrentOptions) (*Torrent, error) {
	if mi.Info == nil {
		return nil, fmt.Errorf("engine: torrent %s has no info", mi.InfoHash)
	}
	prov := opts.Storage
	if prov == nil {
		prov = c.cfg.Storage
	}
	info := mi.Info
	store, have, err := prov.Open(mi.InfoHash, info)
	if err != nil {
		return nil, fmt.Errorf("engine: open storage for %q: %w", info.Name, err)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	t := &Torrent{
		client:     c,
		infoHash:   mi.InfoHash,
		mi:         mi,
		opts:       opts,
		info:       info,
		store:      store,
		events:     make(chan func(), 1024),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		complete:   make(chan struct{}),
		haveBits:   make([]atomic.Uint64, (info.NumPieces()+63)/64),
		wakeCh:     make(chan struct{}),
		banned:     make(map[netip.Addr]bool),
		readerPoke: make(chan struct{}, 1),
		conns:      make(map[*conn]struct{}),
		byID:       make(map[picker.PeerID]*conn),
		partial:    make(map[int]*partialPiece),
		suspects:   make(map[int][]blockMark),
		strikes:    make(map[netip.Addr]int),
		candidates: make(map[netip.AddrPort]*candidate),
		readers:    make(map[*Reader]picker.ReaderID),
		pinned:     make(map[int]bool),
	}
	policy := picker.OnlyWanted
	if opts.DownloadAll {
		policy = picker.All
	}
	t.picker = picker.New(picker.Config{
		NumPieces:   info.NumPieces(),
		PieceLength: info.PieceLength,
		TotalLength: info.TotalLength,
		BlockSize:   peer.BlockSize,
		Background:  policy,
	})
	for _, p := range have {
		t.markHave(p)
	}
	if int(t.numHave.Load()) == info.NumPieces() {
		// Complete from the start (seeding): no "completed" announce.
		t.isComplete = true
		close(t.complete)
	}
	if ev, ok := store.(storage.Evicter); ok {
		ev.OnEvict(t.evicted)
	}
	tiers := opts.Trackers
	if tiers == nil {
		tiers = mi.Trackers()
	}
	if !c.cfg.NoTrackers && len(tiers) > 0 && !(len(tiers) == 1 && len(tiers[0]) == 0) {
		t.announcer = tracker.NewAnnouncer(tracker.AnnouncerConfig{
			Tiers:    tiers,
			InfoHash: mi.InfoHash,
			PeerID:   c.peerID,
			Port:     c.port,
			Stats: func() (int64, int64, int64) {
				return t.uploaded.Load(), t.downloaded.Load(), info.TotalLength - t.bytesHave.Load()
			},
			OnPeers: func(peers []netip.AddrPort) { t.post(func() { t.addCandidates(peers) }) },
			Logf:    func(f string, a ...any) { c.logf("%s: tracker: "+f, append([]any{info.Name}, a...)...) },
		})
	}
	t.refreshStats(time.Now())
	return t, nil
}

// start launches the loop and the announcer.
func (t *Torrent) start() {
	t.wg.Add(1)
	go t.run()
	if t.announcer != nil {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.announcer.Run(t.ctx)
		}()
	}
	if len(t.opts.Peers) > 0 {
		peers := t.opts.Peers
		t.post(func() { t.addCandidates(peers) })
	}
}

// close stops the torrent and waits for all of its goroutines.
func (t *Torrent) close() {
	t.closing.Do(func() {
		t.cancel()
		close(t.done)
	})
	t.wg.Wait()
	t.store.Close()
}

// post runs f on the loop; false if the torrent has stopped.
func (t *Torrent) post(f func()) bool {
	select {
	case t.events <- f:
		return true
	case <-t.done:
		return false
	}
}

// postConn is post that also gives up when c closes.
func (t *Torrent) postConn(c *conn, f func()) bool {
	select {
	case t.events <- f:
		return true
	case <-t.done:
		return false
	case <-c.done:
		return false
	}
}

// handOver gives a handshaken connection to the loop.
func (t *Torrent) handOver(nc net.Conn, addr netip.AddrPort, pid [20]byte, rsv peer.Reserved, incoming bool) {
	if !t.post(func() { t.addConn(nc, addr, pid, rsv, incoming) }) {
		nc.Close()
	}
}

// InfoHash identifies the torrent.
func (t *Torrent) InfoHash() metainfo.Hash { return t.infoHash }

// Name is the torrent's folder name.
func (t *Torrent) Name() string { return t.info.Name }

func (t *Torrent) name() string { return t.info.Name }

// Info is the torrent's info dictionary.
func (t *Torrent) Info() *metainfo.Info { return t.info }

// MetaInfo is the torrent's metainfo.
func (t *Torrent) MetaInfo() *metainfo.MetaInfo { return t.mi }

// Complete is closed once every piece is verified and stored.
func (t *Torrent) Complete() <-chan struct{} { return t.complete }

// HavePiece reports whether a piece is verified and stored.
func (t *Torrent) HavePiece(i int) bool {
	if i < 0 || i >= t.info.NumPieces() {
		return false
	}
	return t.haveBits[i/64].Load()&(1<<(uint(i)%64)) != 0
}

// BytesCompleted counts verified bytes.
func (t *Torrent) BytesCompleted() int64 { return t.bytesHave.Load() }

// Stats returns the latest snapshot.
func (t *Torrent) Stats() Stats {
	t.statsMu.Lock()
	defer t.statsMu.Unlock()
	s := t.stats
	s.PiecesHave = int(t.numHave.Load())
	s.BytesCompleted = t.bytesHave.Load()
	s.Downloaded = t.downloaded.Load()
	s.Uploaded = t.uploaded.Load()
	return s
}

// AddPeers gives the torrent peers to try, e.g. from the command line.
func (t *Torrent) AddPeers(peers []netip.AddrPort) {
	t.post(func() { t.addCandidates(peers) })
}

// FileBytesCompleted counts the verified bytes of file i.
func (t *Torrent) FileBytesCompleted(i int) int64 {
	f := t.info.Files[i]
	if f.Length == 0 {
		return 0
	}
	pl := t.info.PieceLength
	var n int64
	for p := int(f.Offset / pl); p <= int((f.Offset+f.Length-1)/pl); p++ {
		if !t.HavePiece(p) {
			continue
		}
		s := max(f.Offset, int64(p)*pl)
		e := min(f.Offset+f.Length, int64(p)*pl+t.info.PieceLen(p))
		n += e - s
	}
	return n
}

// markHave publishes a verified piece to readers. Loop (or construction) only.
func (t *Torrent) markHave(p int) {
	word, bit := p/64, uint64(1)<<(uint(p)%64)
	if t.haveBits[word].Load()&bit != 0 {
		return
	}
	t.haveBits[word].Or(bit)
	t.numHave.Add(1)
	t.bytesHave.Add(t.info.PieceLen(p))
	t.picker.SetHave(p)
}

// evicted runs on the cache's goroutine when it dropped one of our pieces.
func (t *Torrent) evicted(p int) {
	if p < 0 || p >= t.info.NumPieces() {
		return
	}
	word, bit := p/64, uint64(1)<<(uint(p)%64)
	if old := t.haveBits[word].And(^bit); old&bit != 0 {
		t.numHave.Add(-1)
		t.bytesHave.Add(-t.info.PieceLen(p))
	}
	t.post(func() { t.picker.Lost(p) })
}

// wake tells every waiting reader that a piece arrived.
func (t *Torrent) wake() {
	t.wakeMu.Lock()
	close(t.wakeCh)
	t.wakeCh = make(chan struct{})
	t.wakeMu.Unlock()
}

func (t *Torrent) waitChan() <-chan struct{} {
	t.wakeMu.Lock()
	defer t.wakeMu.Unlock()
	return t.wakeCh
}

func (t *Torrent) isBanned(a netip.Addr) bool {
	t.bannedMu.Lock()
	defer t.bannedMu.Unlock()
	return t.banned[a]
}

// Banned lists the addresses banned for sending bad data.
func (t *Torrent) Banned() []netip.Addr {
	t.bannedMu.Lock()
	defer t.bannedMu.Unlock()
	out := make([]netip.Addr, 0, len(t.banned))
	for a := range t.banned {
		out = append(out, a)
	}
	return out
}
