package session

import (
	"context"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Engine is what the session needs of a BitTorrent client: NewEngine adapts
// an *engine.Client. Its methods may be called concurrently.
type Engine interface {
	// AddTorrent starts a torrent whose metainfo is known, under name:
	// its v1 hash, or for a hybrid either hash (engine.TorrentOptions.Name;
	// zero: the v1 hash).
	AddTorrent(mi *metainfo.MetaInfo, name metainfo.Hash) (Handle, error)
	// AddMagnet starts a torrent that knows only its magnet link.
	AddMagnet(m *metainfo.Magnet) (Handle, error)
	// RemoveTorrent stops a torrent; it may take seconds (trackers are
	// told).
	RemoveTorrent(ih metainfo.Hash) error
}

// Handle is one torrent running in the engine. Its methods must be safe for
// concurrent use and must not wait on the swarm.
type Handle interface {
	InfoHash() metainfo.Hash
	// Name is the info's name, else the magnet's display name
	// (untrusted), else the info-hash in hex.
	Name() string
	// MetaInfo is nil until the info is known (see LayersReady).
	MetaInfo() *metainfo.MetaInfo
	// InfoReady is closed once MetaInfo is non-nil.
	InfoReady() <-chan struct{}
	// LayersReady is closed once MetaInfo is final: it may change once
	// after InfoReady, to a copy carrying the v2 piece layers fetched from
	// peers.
	LayersReady() <-chan struct{}
	Stats() engine.Stats
	FileBytesCompleted(file int) int64
	NewReader(file int, media bool) (Reader, error)
}

// Reader reads one file of a torrent (see engine.Reader).
type Reader interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	Close() error
}

// Store is the part of the piece cache the session keeps its records in
// and reports on. *cache.Cache implements it.
type Store interface {
	// PutMeta records what a torrent is: .torrent bytes or a magnet link.
	PutMeta(ih cache.InfoHash, meta []byte) error
	// Meta returns what PutMeta recorded, or an error wrapping
	// cache.ErrNotFound.
	Meta(ih cache.InfoHash) ([]byte, error)
	// Torrents lists the torrents with a record.
	Torrents() []cache.InfoHash
	// DropTorrent forgets a torrent: its record and its pieces.
	DropTorrent(ih cache.InfoHash) error
	Usage() []cache.Usage
	Size() int64
	Capacity() int64
	DiskUsage() int64
}

var _ Store = (*cache.Cache)(nil)

// NewEngine adapts c to Engine; torrents are added with opts.
func NewEngine(c *engine.Client, opts engine.TorrentOptions) Engine {
	return clientEngine{c: c, opts: opts}
}

type clientEngine struct {
	c    *engine.Client
	opts engine.TorrentOptions
}

func (e clientEngine) AddTorrent(mi *metainfo.MetaInfo, name metainfo.Hash) (Handle, error) {
	opts := e.opts
	opts.Name = name
	t, err := e.c.AddTorrent(mi, opts)
	if err != nil {
		return nil, err
	}
	return engineTorrent{t}, nil
}

func (e clientEngine) AddMagnet(m *metainfo.Magnet) (Handle, error) {
	t, err := e.c.AddMagnet(m, e.opts)
	if err != nil {
		return nil, err
	}
	return engineTorrent{t}, nil
}

func (e clientEngine) RemoveTorrent(ih metainfo.Hash) error { return e.c.RemoveTorrent(ih) }

// engineTorrent is an *engine.Torrent whose NewReader returns a Reader.
type engineTorrent struct{ *engine.Torrent }

func (t engineTorrent) NewReader(file int, media bool) (Reader, error) {
	r, err := t.Torrent.NewReader(file, media)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Torrent is a torrent of the session, as front-ends see it. Safe for
// concurrent use; it stays usable after removal (reads then fail).
type Torrent struct {
	// read-only after construction
	h     Handle
	ih    metainfo.Hash
	added time.Time
	gone  chan struct{} // closed when it leaves the session

	// writes counts the cache writes in flight for this torrent; Add is
	// called only under Session.mu while the torrent is in the map, and
	// the drop waits for it after taking it out.
	writes sync.WaitGroup

	// keptPeers is the peer list last stored or read for it (warm.go);
	// owned by the session's peer keeper (see keepPeers).
	keptPeers []byte
}

func newTorrent(h Handle, now time.Time) *Torrent {
	return &Torrent{h: h, ih: h.InfoHash(), added: now, gone: make(chan struct{})}
}

// InfoHash identifies the torrent.
func (t *Torrent) InfoHash() metainfo.Hash { return t.ih }

// Name is the info's name, else the magnet's display name (untrusted:
// sanitise it before using it as a file name), else the hex info-hash.
func (t *Torrent) Name() string { return t.h.Name() }

// Info is the info dictionary, or nil until a magnet's metadata arrives.
func (t *Torrent) Info() *metainfo.Info {
	if mi := t.h.MetaInfo(); mi != nil {
		return mi.Info
	}
	return nil
}

// InfoReady is closed once Info is non-nil.
func (t *Torrent) InfoReady() <-chan struct{} { return t.h.InfoReady() }

// Removed is closed when the torrent leaves the session.
func (t *Torrent) Removed() <-chan struct{} { return t.gone }

// Time is the torrent's creation date, or when it was added: the mtime a
// front-end shows.
func (t *Torrent) Time() time.Time {
	if mi := t.h.MetaInfo(); mi != nil && !mi.CreationDate.IsZero() {
		return mi.CreationDate
	}
	return t.added
}

// Stats is the engine's latest snapshot.
func (t *Torrent) Stats() engine.Stats { return t.h.Stats() }

// FileBytesCompleted counts the verified bytes of file i.
func (t *Torrent) FileBytesCompleted(i int) int64 { return t.h.FileBytesCompleted(i) }

// NewReader returns a reader of file i; media asks for its head and tail
// at once (container indexes live there).
func (t *Torrent) NewReader(i int, media bool) (Reader, error) { return t.h.NewReader(i, media) }
