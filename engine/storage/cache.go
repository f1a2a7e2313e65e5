package storage

import (
	"errors"
	"fmt"
	"sync"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Cache stores pieces in the badger piece cache. Pieces survive restarts; the
// cache may evict unpinned pieces, which Evicter reports to the engine.
type Cache struct {
	c   *cache.Cache
	hub *hub
}

var _ Provider = (*Cache)(nil)

// NewCache wraps an open cache. It takes the cache's eviction hook, to fan it
// out to the torrents; use one Cache per cache.Cache.
func NewCache(c *cache.Cache) *Cache {
	h := &hub{ts: make(map[metainfo.Hash]*cacheTorrent)}
	c.OnEvict(h.evicted)
	return &Cache{c: c, hub: h}
}

// Open returns the torrent's view of the cache and the pieces it already
// holds. It refuses, with an error wrapping ErrNoSpace, a torrent whose
// pieces the cache could never hold: larger than cache.MaxPiece, or two of
// them (a read may span two, and both stay pinned while it waits) larger
// than the capacity. Fetching such pieces would only see them refused.
func (c *Cache) Open(ih metainfo.Hash, info *metainfo.Info) (Torrent, []int, error) {
	if info.NumPieces() > 0 {
		largest := info.PieceLen(0)
		two := min(2*largest, info.TotalLength)
		switch {
		case largest > c.c.MaxPiece():
			return nil, nil, fmt.Errorf("storage: %q has pieces of %s; the cache takes pieces up to %s: %w",
				info.Name, sizeString(largest), sizeString(c.c.MaxPiece()), ErrNoSpace)
		case two > c.c.Capacity():
			return nil, nil, fmt.Errorf("storage: %q has pieces of %s; a read may need two at once, more than the cache's capacity of %s: %w",
				info.Name, sizeString(largest), sizeString(c.c.Capacity()), ErrNoSpace)
		}
	}
	t := &cacheTorrent{c: c.c, hub: c.hub, ih: ih, info: info}
	// Hear of evictions before listing the pieces: one landing in between
	// would otherwise leave a listed piece that is gone.
	c.hub.add(t)
	var have []int
	for _, p := range c.c.Pieces(ih) {
		if p < info.NumPieces() {
			have = append(have, p)
		}
	}
	return t, have, nil
}

type cacheTorrent struct {
	// read-only after construction
	c    *cache.Cache
	hub  *hub
	ih   metainfo.Hash
	info *metainfo.Info

	mu    sync.Mutex // guards fn and early; never held while calling fn
	fn    func(piece int)
	early []int // evictions before OnEvict, replayed to fn
}

var (
	_ Evicter  = (*cacheTorrent)(nil)
	_ Pinner   = (*cacheTorrent)(nil)
	_ Space    = (*cacheTorrent)(nil)
	_ Consumer = (*cacheTorrent)(nil)
)

func (t *cacheTorrent) ReadAt(p []byte, off int64) (int, error) {
	err := pieceSpan(t.info, off, len(p), func(piece int, pieceOff int64, p0, p1 int) error {
		if _, err := t.c.ReadAt(t.ih, piece, p[p0:p1], pieceOff); err != nil {
			if errors.Is(err, cache.ErrNotFound) {
				return fmt.Errorf("piece %d: %w", piece, ErrNotStored)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *cacheTorrent) WritePiece(index int, data []byte) error {
	return cacheErr(t.c.Put(t.ih, index, data))
}

// cacheErr tells a refusal that lasts (disk, size) from one that passes as
// readers release their pins.
func cacheErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cache.ErrDiskFull), errors.Is(err, cache.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	case errors.Is(err, cache.ErrFull):
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

func (t *cacheTorrent) Close() error {
	t.hub.remove(t)
	return nil
}

func (t *cacheTorrent) Pin(piece int)   { t.c.Pin(t.ih, piece) }
func (t *cacheTorrent) Unpin(piece int) { t.c.Unpin(t.ih, piece) }

func (t *cacheTorrent) Consumed(piece int) { t.c.Consumed(t.ih, piece) }

func (t *cacheTorrent) Has(piece int) bool { return t.c.Has(t.ih, piece) }

func (t *cacheTorrent) Free() int64        { return t.c.Free() }
func (t *cacheTorrent) Room(n int64) error { return cacheErr(t.c.Room(n)) }

// OnEvict registers fn for this torrent's evictions and replays those since
// Open.
func (t *cacheTorrent) OnEvict(fn func(piece int)) {
	t.mu.Lock()
	t.fn = fn
	early := t.early
	t.early = nil
	t.mu.Unlock()
	for _, p := range early {
		fn(p)
	}
}

func (t *cacheTorrent) evicted(piece int) {
	t.mu.Lock()
	fn := t.fn
	if fn == nil {
		t.early = append(t.early, piece)
	}
	t.mu.Unlock()
	if fn != nil {
		fn(piece)
	}
}

// sizeString renders n in binary units for messages.
func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.4g KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
