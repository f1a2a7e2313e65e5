package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/fs"
)

// host adapts the engine to the filesystem: it adds, removes and lists
// torrents, and remembers each torrent's metainfo in the cache so the next
// mount brings it back without asking the swarm. Safe for concurrent use.
type host struct {
	// read-only after construction
	client *engine.Client
	cache  *cache.Cache
	opts   engine.TorrentOptions
	logf   func(string, ...any)
	ctx    context.Context // ends at unmount; bounds the metadata waiters
	wg     sync.WaitGroup  // metadata waiters

	// memo orders what the cache remembers of a torrent: a magnet's
	// metainfo stored as it arrives against a removal that forgets it.
	memo sync.Mutex

	mu  sync.Mutex // guards srv and added
	srv *fs.Server
	// added remembers when each torrent was added, for mtimes.
	added map[metainfo.Hash]time.Time
}

var _ fs.Host = (*host)(nil)

func newHost(ctx context.Context, c *engine.Client, ca *cache.Cache, opts engine.TorrentOptions, logf func(string, ...any)) *host {
	return &host{client: c, cache: ca, opts: opts, logf: logf, ctx: ctx, added: map[metainfo.Hash]time.Time{}}
}

// setServer lets the host refresh the mount after changes made through the
// control socket.
//
// AddTorrentFile, AddMagnet and Remove do not refresh the mount: when the
// filesystem calls them (a .torrent copied in, mkdir, rmdir) it updates its
// own tree afterwards, and a refresh from inside its handler would get there
// first (mkdir of an info-hash then found the folder already there and failed
// with EEXIST). Their other callers, the control socket, call refresh.
func (h *host) setServer(s *fs.Server) {
	h.mu.Lock()
	h.srv = s
	h.mu.Unlock()
}

func (h *host) refresh() {
	h.mu.Lock()
	s := h.srv
	h.mu.Unlock()
	if s != nil {
		s.Refresh()
	}
}

func (h *host) wrap(t *engine.Torrent) fs.Torrent {
	h.mu.Lock()
	at, ok := h.added[t.InfoHash()]
	if !ok {
		at = time.Now()
		h.added[t.InfoHash()] = at
	}
	h.mu.Unlock()
	return fsTorrent{t: t, at: at}
}

func (h *host) Torrents() []fs.Torrent {
	ts := h.client.Torrents()
	out := make([]fs.Torrent, 0, len(ts))
	for _, t := range ts {
		out = append(out, h.wrap(t))
	}
	return out
}

// AddTorrentFile adds .torrent bytes and persists them.
func (h *host) AddTorrentFile(data []byte) (fs.Torrent, error) {
	mi, err := metainfo.Parse(data)
	if err != nil {
		return nil, err
	}
	if _, ok := h.client.Torrent(mi.InfoHash); ok {
		return nil, fmt.Errorf("torrent %s (%s) is already added: %w", mi.Info.Name, mi.InfoHash, os.ErrExist)
	}
	t, err := h.client.AddTorrent(mi, h.opts)
	if err != nil {
		return nil, err
	}
	h.remember(t, data)
	h.logf("added %s (%s)", mi.Info.Name, mi.InfoHash)
	return h.wrap(t), nil
}

// AddMagnet adds a magnet. The cache remembers the link at once, so a mount
// stopped before the metadata came asks the swarm again next time, and the
// metainfo in its place once it arrives.
func (h *host) AddMagnet(uri string) (fs.Torrent, error) {
	uri = strings.TrimSpace(uri)
	m, err := metainfo.ParseMagnet(uri)
	if err != nil {
		return nil, err
	}
	if _, ok := h.client.Torrent(m.InfoHash); ok {
		return nil, fmt.Errorf("torrent %s is already added: %w", m.InfoHash, os.ErrExist)
	}
	t, err := h.client.AddMagnet(m, h.opts)
	if err != nil {
		return nil, err
	}
	h.remember(t, []byte(uri))
	h.logf("added magnet %s (%s)", t.Name(), m.InfoHash)
	h.awaitInfo(t)
	return h.wrap(t), nil
}

// awaitInfo has the cache remember t's metainfo once it arrives, unless t
// is removed (or the mount stops) first.
func (h *host) awaitInfo(t *engine.Torrent) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		select {
		case <-t.InfoReady():
		case <-t.Done():
			return
		case <-h.ctx.Done():
			return
		}
		mi := t.MetaInfo()
		if mi == nil {
			return
		}
		b, err := mi.Marshal()
		if err != nil {
			h.logf("remembering %s: %v", mi.Info.Name, err)
			return
		}
		h.remember(t, b)
		h.refresh()
	}()
}

// remember stores meta (metainfo, or a magnet link) as what the cache
// keeps of t, unless t was removed meanwhile: a removal, which forgets it,
// always wins.
func (h *host) remember(t *engine.Torrent, meta []byte) {
	h.memo.Lock()
	defer h.memo.Unlock()
	if cur, ok := h.client.Torrent(t.InfoHash()); !ok || cur != t {
		return
	}
	if err := h.cache.PutMeta(t.InfoHash(), meta); err != nil {
		h.logf("remembering %s (%s): %v", t.Name(), t.InfoHash(), err)
	}
}

// Remove stops a torrent and forgets it, cached pieces included.
func (h *host) Remove(ih metainfo.Hash) error {
	t, ok := h.client.Torrent(ih)
	if !ok {
		return fmt.Errorf("no torrent %s: %w", ih, os.ErrNotExist)
	}
	name := t.Name()
	h.memo.Lock()
	defer h.memo.Unlock()
	if err := h.client.RemoveTorrent(ih); err != nil {
		return err
	}
	if err := h.cache.DropTorrent(ih); err != nil {
		h.logf("dropping %s from the cache: %v", name, err)
	}
	h.mu.Lock()
	delete(h.added, ih)
	h.mu.Unlock()
	h.logf("removed %s (%s)", name, ih)
	return nil
}

// find resolves a torrent by exact name, info-hash, or unique hash prefix.
func (h *host) find(id string) (*engine.Torrent, error) {
	var matches []*engine.Torrent
	for _, t := range h.client.Torrents() {
		hex := t.InfoHash().String()
		if t.Name() == id || hex == strings.ToLower(id) {
			return t, nil
		}
		if len(id) >= 6 && strings.HasPrefix(hex, strings.ToLower(id)) {
			matches = append(matches, t)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, fmt.Errorf("no torrent named %q", id)
	default:
		return nil, fmt.Errorf("%q matches %d torrents; give more of the info-hash", id, len(matches))
	}
}

// restore adds every torrent whose metainfo (or, for a magnet whose
// metadata never came, link) the cache remembers.
func (h *host) restore() {
	for _, ih := range h.cache.Torrents() {
		b, err := h.cache.Meta(ih)
		if err != nil {
			if !errors.Is(err, cache.ErrNotFound) {
				h.logf("restoring %x: %v", ih, err)
			}
			continue
		}
		if bytes.HasPrefix(b, []byte("magnet:")) {
			m, err := metainfo.ParseMagnet(string(b))
			if err != nil {
				h.logf("restoring %x: %v", ih, err)
				continue
			}
			t, err := h.client.AddMagnet(m, h.opts)
			if err != nil {
				h.logf("restoring magnet %s: %v", m.InfoHash, err)
				continue
			}
			h.awaitInfo(t)
			continue
		}
		mi, err := metainfo.Parse(b)
		if err != nil {
			h.logf("restoring %x: %v", ih, err)
			continue
		}
		if _, err := h.client.AddTorrent(mi, h.opts); err != nil {
			h.logf("restoring %s: %v", mi.Info.Name, err)
		}
	}
}

// wait ends the metadata waiters; call after ctx is done.
func (h *host) wait() { h.wg.Wait() }

// fsTorrent is an engine torrent as the filesystem sees it.
type fsTorrent struct {
	t  *engine.Torrent
	at time.Time
}

var _ fs.Torrent = fsTorrent{}

func (f fsTorrent) InfoHash() metainfo.Hash    { return f.t.InfoHash() }
func (f fsTorrent) Name() string               { return f.t.Name() }
func (f fsTorrent) Info() *metainfo.Info       { return f.t.Info() }
func (f fsTorrent) InfoReady() <-chan struct{} { return f.t.InfoReady() }
func (f fsTorrent) FileCachedBytes(i int) int64 {
	return f.t.FileBytesCompleted(i)
}

// Time is the torrent's creation date, or when it was added.
func (f fsTorrent) Time() time.Time {
	if mi := f.t.MetaInfo(); mi != nil && !mi.CreationDate.IsZero() {
		return mi.CreationDate
	}
	return f.at
}

func (f fsTorrent) NewReader(file int, media bool) fs.Reader {
	r, err := f.t.NewReader(file, media)
	if err != nil {
		return errReader{err}
	}
	return r
}

func (f fsTorrent) Stats() fs.TorrentStats {
	s := f.t.Stats()
	var p float64
	if s.TotalLength > 0 {
		p = float64(s.BytesCompleted) / float64(s.TotalLength)
	}
	return fs.TorrentStats{Progress: p, Peers: s.Peers, DownloadRate: s.DownloadRate, UploadRate: s.UploadRate}
}

// errReader fails every read with the error that prevented opening.
type errReader struct{ err error }

func (e errReader) ReadAt(context.Context, []byte, int64) (int, error) { return 0, e.err }
func (e errReader) Close() error                                       { return nil }
