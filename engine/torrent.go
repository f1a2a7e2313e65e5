package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/metafetch"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/tracker"
	"github.com/swarmfs/swarmfs/picker"
)

// Torrent is one torrent in a Client. Its methods are safe for concurrent
// use; its mutable state belongs to its loop goroutine (see the package doc).
//
// A torrent added from a magnet starts without its info dictionary: Info
// and MetaInfo are nil and InfoReady open until the metadata has arrived
// from peers and been checked against the info-hash.
type Torrent struct {
	// read-only after construction
	client    *Client
	infoHash  metainfo.Hash
	magnet    *metainfo.Magnet // nil when added from a .torrent
	v2only    bool             // named by its v2 info-hash, truncated (torrent_v2.go)
	alias     aliasCell        // a hybrid's v2 info-hash truncated, zero otherwise; set late for a btih magnet (torrent_v2.go)
	tiers     [][]string       // trackers, for the announcer and MetaInfo
	opts      TorrentOptions
	events    chan func()
	done      chan struct{} // closed when the torrent stops
	ctx       context.Context
	cancel    context.CancelFunc
	closing   sync.Once
	wg        sync.WaitGroup // loop, announcers, dials, connections, hashing, metadata checks
	complete  chan struct{}  // closed when every piece is verified
	infoReady chan struct{}  // closed once the info fields below are set
	dhtCtx    context.Context
	dhtStop   context.CancelFunc // ends DHT announcing (private torrent)
	annCtx    context.Context
	annStop   context.CancelFunc // ends tracker announcing with "stopped" (goal.go)

	// layersDone is closed once MetaInfo is final; withLayers is then the
	// metainfo with the piece layers fetched from peers, if any were
	// (torrent_v2.go).
	layersDone chan struct{}
	withLayers atomic.Pointer[metainfo.MetaInfo]

	// The info fields are set once, before hasInfo is stored and infoReady
	// closed: at construction for a .torrent, by the loop for a magnet. The
	// loop reads them freely; any other goroutine only after it has seen
	// hasInfo true (which orders the writes before its reads).
	mi        *metainfo.MetaInfo
	info      *metainfo.Info
	store     storage.Torrent
	haveBits  bitSet // verified pieces, for readers
	infoBytes []byte // the info dictionary, served to peers (BEP 9)
	hasInfo   atomic.Bool

	pub published // counters for readers, Stats, trackers and the DHT announcer

	// shared with other goroutines, each behind its own leaf mutex
	// (torrent_shared.go)
	waiters waker       // readers waiting for pieces
	banned  banList     // read by the accept path
	readerQ readerQueue // readers' operations for the loop
	stats   statsCell   // the latest snapshot (torrent_stats.go)
	scrape  scrapeCell  // the trackers' counts (torrent_scrape.go)

	// The store's evictions and refusals (torrent_store.go).
	evictions   evictQueue   // pieces to re-check with the store
	refusedBits bitSet       // pieces refused for good: their reads fail; set with the info
	readBits    bitSet       // pieces read to their end before they were stored (consumed); set with the info
	storeErr    storeErrs    // why the store refuses pieces
	refusals    atomic.Int64 // pieces refused since the start
	bgPaused    atomic.Bool  // DownloadAll's background is paused: the store is full
	mem         memPieces    // verified pieces being written, or refused, held for their readers

	// loop-owned
	picker     *picker.Picker // nil until the info is known
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
	pinVersion uint64 // picker.PinVersion at the last syncPins
	announcer  *tracker.Announcer
	// announcerV2 announces a hybrid under its truncated v2 hash; nil
	// otherwise. Scrapes and status follow announcer only.
	announcerV2 *tracker.Announcer
	lastChoke   time.Time
	lastOptim   time.Time
	hashing     int
	arrivedOK   int // pieces from peers verified as their blocks arrived (hashArrived)
	isComplete  bool
	meta        *metafetch.Fetch // a magnet's metadata download (torrent_meta.go); nil once the info is known
	st          storeState       // the store's refusals (torrent_store.go)
	ws          webSeeds         // url-list sources (torrent_webseed.go)
	waits       readWaits        // pieces reads wait for (torrent_waits.go)
	super       superState       // super-seeding, BEP 16 (superseed.go)
	goal        goalState        // seeding goals (goal.go)
	seedless    bool             // the last Stats said NoSeeders (torrent_scrape.go)
	uploadOnly  uploadOnlyState  // what BEP 21 said (uploadonly.go)
	v2          v2State          // BEP 52 checks and piece layers (torrent_v2.go)
}

// published are a torrent's counters, read by any goroutine without the
// loop. The loop writes all but the transfer counters, which connections'
// goroutines add to as bytes flow.
type published struct {
	numHave    atomic.Int64 // verified pieces
	bytesHave  atomic.Int64 // their bytes
	downloaded atomic.Int64 // piece payload received, good or not
	wasted     atomic.Int64 // of which not used: duplicates, cancelled, unasked
	uploaded   atomic.Int64 // piece payload sent
	hashFailed atomic.Int64 // pieces that failed their hash check
	numConns   atomic.Int32 // established connections, for the DHT announcer
}

// unknownLeft is what trackers are told is left to download before the
// size is known: anything positive, so they do not take us for a seed.
const unknownLeft = 1 << 30

// newTorrent builds a torrent without info; openInfo or the metadata
// download sets it.
func newTorrent(c *Client, ih metainfo.Hash, mag *metainfo.Magnet, opts TorrentOptions, tiers [][]string) *Torrent {
	ctx, cancel := context.WithCancel(c.ctx)
	dctx, dcancel := context.WithCancel(ctx)
	actx, acancel := context.WithCancel(ctx)
	t := &Torrent{
		client:     c,
		infoHash:   ih,
		magnet:     mag,
		v2only:     isV2Only(nil, mag),
		tiers:      tiers,
		opts:       opts,
		events:     make(chan func(), 1024),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		dhtCtx:     dctx,
		dhtStop:    dcancel,
		annCtx:     actx,
		annStop:    acancel,
		goal:       goalState{done: make(chan struct{})},
		complete:   make(chan struct{}),
		infoReady:  make(chan struct{}),
		layersDone: make(chan struct{}),
		readerQ:    readerQueue{poke: make(chan struct{}, 1)},
		evictions:  evictQueue{poke: make(chan struct{}, 1)},
		conns:      make(map[*conn]struct{}),
		byID:       make(map[picker.PeerID]*conn),
		partial:    make(map[int]*partialPiece),
		suspects:   make(map[int][]blockMark),
		strikes:    make(map[netip.Addr]int),
		candidates: make(map[netip.AddrPort]*candidate),
		readers:    make(map[*Reader]picker.ReaderID),
		pinned:     make(map[int]bool),
	}
	if !c.cfg.NoTrackers && len(tiers) > 0 && !(len(tiers) == 1 && len(tiers[0]) == 0) {
		t.announcer = t.newAnnouncer(tiers, ih)
	}
	t.meta = t.newMetaFetch()
	t.refreshStats(time.Now())
	t.alias.Store(v2Alias(nil, mag))
	return t
}

// newAnnouncer makes the tracker announcer for the torrent under name ih.
func (t *Torrent) newAnnouncer(tiers [][]string, ih metainfo.Hash) *tracker.Announcer {
	c := t.client
	return tracker.NewAnnouncer(tracker.AnnouncerConfig{
		Tiers:    tiers,
		InfoHash: ih,
		PeerID:   c.peerID,
		Port:     c.port,
		// Trackers record where an announce comes from: announce from
		// the address we listen on when it is a specific one.
		LocalIP: c.Addr().Addr(),
		IPv6:    c.ipv6,
		Stats: func() (int64, int64, int64) {
			left := int64(unknownLeft)
			if t.hasInfo.Load() {
				left = t.info.TotalLength - t.pub.bytesHave.Load()
			}
			return t.pub.uploaded.Load(), t.pub.downloaded.Load(), left
		},
		OnPeers: func(peers []netip.AddrPort) { t.post(func() { t.addCandidates(peers) }) },
		Logf:    func(f string, a ...any) { c.logf("%s: tracker: "+f, append([]any{t.name()}, a...)...) },
	})
}

// names are the info-hashes the torrent is announced under: its name and,
// for a hybrid, its truncated v2 hash.
func (t *Torrent) names() []metainfo.Hash {
	alias := t.alias.Load()
	if alias.IsZero() {
		return []metainfo.Hash{t.infoHash}
	}
	return []metainfo.Hash{t.infoHash, alias}
}

// openInfo opens storage for a torrent added with its info (the caller
// waits: storage may check files) and sets the info before the loop starts.
func (t *Torrent) openInfo(mi *metainfo.MetaInfo) error {
	store, have, err := t.provider().Open(t.infoHash, mi.Info)
	if err != nil {
		return fmt.Errorf("engine: open storage for %q: %w", mi.Info.Name, err)
	}
	t.setInfo(mi, store, have)
	t.refreshStats(time.Now())
	return nil
}

func (t *Torrent) provider() storage.Provider {
	if t.opts.Storage != nil {
		return t.opts.Storage
	}
	return t.client.cfg.Storage
}

// setInfo installs the info, the store and the pieces it holds, then
// publishes them. Before start, or on the loop.
func (t *Torrent) setInfo(mi *metainfo.MetaInfo, store storage.Torrent, have []int) {
	info := mi.Info
	t.mi, t.info, t.store, t.infoBytes = mi, info, store, mi.InfoBytes
	t.meta = nil // nothing left to fetch
	t.initV2(info)
	t.haveBits = newBitSet(info.NumPieces())
	t.refusedBits = newBitSet(info.NumPieces())
	t.readBits = newBitSet(info.NumPieces())
	t.evictions.set = newBitSet(info.NumPieces())
	policy := picker.OnlyWanted
	if t.opts.DownloadAll {
		policy = picker.All
	}
	t.picker = picker.New(picker.Config{
		NumPieces:   info.NumPieces(),
		PieceLength: info.PieceLength,
		TotalLength: info.TotalLength,
		BlockSize:   peer.BlockSize,
		Background:  policy,
		// Readahead windows and pins must fit the cache, or the cache
		// would evict what a reader is about to use.
		MaxWindowBytes: t.client.cfg.MaxWindowBytes,
		// Each client breaks ties among equally rare pieces its own way,
		// from the random tail of its peer id: otherwise a fleet of
		// hosts all start on the same pieces and all ask the seed.
		Seed: binary.LittleEndian.Uint64(t.client.peerID[12:]),
	})
	t.initWebSeeds()
	for _, p := range have {
		if p >= 0 && p < info.NumPieces() {
			t.markHave(p)
		}
	}
	if int(t.pub.numHave.Load()) == info.NumPieces() {
		// Complete from the start (seeding): no "completed" announce.
		t.isComplete = true
		close(t.complete)
	} else {
		// Off the loop: the first read's piece must not wait for it.
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			warmPieceBufs(info.PieceLength)
		}()
		t.preconnectWebSeeds()
	}
	if ev, ok := store.(storage.Evicter); ok {
		// Evictions since Open listed have are replayed now: the loop
		// re-checks those pieces when it starts.
		ev.OnEvict(t.evicted)
	}
	t.hasInfo.Store(true)
	close(t.infoReady)
	if info.Private {
		t.dhtStop()
		if l := t.client.lsd; l != nil {
			for _, ih := range t.names() {
				l.Remove(ih)
			}
		}
	}
}

// start launches the loop, the announcers and local discovery.
func (t *Torrent) start() {
	c := t.client
	if alias := t.alias.Load(); t.announcer != nil && !alias.IsZero() {
		// A hybrid is announced under both names, as libtorrent does,
		// so peers that know only one find it. (Its alias is known by
		// now: AddTorrent sets it after newTorrent.)
		t.announcerV2 = t.newAnnouncer(t.tiers, alias)
	}
	t.wg.Add(1)
	go t.run()
	if t.announcer != nil {
		for _, a := range []*tracker.Announcer{t.announcer, t.announcerV2} {
			if a == nil {
				continue
			}
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				a.Run(t.annCtx)
			}()
		}
		t.wg.Add(1)
		go t.scrapeLoop()
	}
	if c.dht != nil && t.publicSources() {
		t.wg.Add(1)
		go t.dhtLoop()
	}
	if c.lsd != nil && t.publicSources() {
		for _, ih := range t.names() {
			c.lsd.Add(ih)
		}
	}
	peers := append([]netip.AddrPort(nil), t.opts.Peers...)
	if t.magnet != nil {
		for _, p := range t.magnet.Peers {
			if ap, err := netip.ParseAddrPort(p); err == nil {
				peers = append(peers, ap)
			} else {
				c.logf("%s: ignoring x.pe peer %q: not ip:port", t.name(), p)
			}
		}
	}
	if len(peers) > 0 {
		t.post(func() { t.addNamedPeers(peers) })
	}
}

// close stops the torrent and waits for all of its goroutines.
func (t *Torrent) close() {
	t.closing.Do(func() {
		t.cancel()
		close(t.done)
	})
	t.wg.Wait()
	if l := t.client.lsd; l != nil {
		for _, ih := range t.names() {
			l.Remove(ih)
		}
	}
	if t.store != nil {
		t.store.Close()
	}
}

// publicSources reports whether the DHT, PEX and LSD may be used: not for a
// private torrent (BEP 27). A magnet's privacy is unknown until its info
// arrives; until then it may use them.
func (t *Torrent) publicSources() bool {
	return !t.hasInfo.Load() || !t.info.Private
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

// Name is the torrent's folder name: the info's name, else the magnet's
// display name (untrusted: sanitise it before using it as a file name),
// else the info-hash in hex.
func (t *Torrent) Name() string {
	if t.hasInfo.Load() {
		return t.info.Name
	}
	if t.magnet != nil && t.magnet.DisplayName != "" {
		return t.magnet.DisplayName
	}
	return t.infoHash.String()
}

func (t *Torrent) name() string { return t.Name() }

// Info is the torrent's info dictionary, or nil until a magnet's metadata
// has arrived. Once non-nil it never changes.
func (t *Torrent) Info() *metainfo.Info {
	if !t.hasInfo.Load() {
		return nil
	}
	return t.info
}

// InfoReady is closed when Info becomes non-nil; it is closed from the
// start for a torrent added with its info.
func (t *Torrent) InfoReady() <-chan struct{} { return t.infoReady }

// Done is closed when the torrent stops: removed, or its client closed.
func (t *Torrent) Done() <-chan struct{} { return t.done }

// MetaInfo is the torrent's metainfo, or nil until the info is known. For a
// magnet it carries the fetched InfoBytes and the magnet's trackers, so the
// caller can save it as a .torrent; for a v2 magnet, once LayersReady is
// closed, the piece layers fetched from peers too.
func (t *Torrent) MetaInfo() *metainfo.MetaInfo {
	if !t.hasInfo.Load() {
		return nil
	}
	if mi := t.withLayers.Load(); mi != nil {
		return mi
	}
	return t.mi
}

// Complete is closed once every piece is verified and stored.
func (t *Torrent) Complete() <-chan struct{} { return t.complete }

// HavePiece reports whether a piece is verified and stored.
func (t *Torrent) HavePiece(i int) bool {
	if !t.hasInfo.Load() || i < 0 || i >= t.info.NumPieces() {
		return false
	}
	return t.haveBits.get(i)
}

// BytesCompleted counts verified bytes.
func (t *Torrent) BytesCompleted() int64 { return t.pub.bytesHave.Load() }

// AddPeers gives the torrent peers to try, such as those that served it
// well last time. (The peers the user named come with TorrentOptions.Peers.)
func (t *Torrent) AddPeers(peers []netip.AddrPort) {
	t.post(func() { t.addCandidates(peers) })
}

// FileBytesCompleted counts the verified bytes of file i (0 until the info
// is known, or for an index out of range).
func (t *Torrent) FileBytesCompleted(i int) int64 {
	if !t.hasInfo.Load() || i < 0 || i >= len(t.info.Files) {
		return 0
	}
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
	if !t.haveBits.set(p) {
		return
	}
	t.pub.numHave.Add(1)
	t.pub.bytesHave.Add(t.info.PieceLen(p))
	t.picker.SetHave(p)
	if t.readBits.clear(p) {
		if c, ok := t.store.(storage.Consumer); ok {
			c.Consumed(p)
		}
	}
}

func (t *Torrent) isBanned(a netip.Addr) bool { return t.banned.has(a) }

// Banned lists the addresses banned for sending bad data.
func (t *Torrent) Banned() []netip.Addr { return t.banned.list() }
