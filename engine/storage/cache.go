package storage

import (
	"errors"
	"fmt"

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
	h := &hub{fns: make(map[metainfo.Hash]func(int))}
	c.OnEvict(h.evicted)
	return &Cache{c: c, hub: h}
}

// Open returns the torrent's view of the cache and the pieces it already holds.
func (c *Cache) Open(ih metainfo.Hash, info *metainfo.Info) (Torrent, []int, error) {
	t := &cacheTorrent{c: c.c, hub: c.hub, ih: ih, info: info}
	var have []int
	for _, p := range c.c.Pieces(ih) {
		if p < info.NumPieces() {
			have = append(have, p)
		}
	}
	return t, have, nil
}

type cacheTorrent struct {
	c    *cache.Cache
	hub  *hub
	ih   metainfo.Hash
	info *metainfo.Info
}

var (
	_ Evicter = (*cacheTorrent)(nil)
	_ Pinner  = (*cacheTorrent)(nil)
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

func (t *cacheTorrent) WritePiece(index int, data []byte) error { return t.c.Put(t.ih, index, data) }

func (t *cacheTorrent) Close() error {
	t.hub.set(t.ih, nil)
	return nil
}

func (t *cacheTorrent) Pin(piece int)   { t.c.Pin(t.ih, piece) }
func (t *cacheTorrent) Unpin(piece int) { t.c.Unpin(t.ih, piece) }

// OnEvict registers fn for this torrent's evictions.
func (t *cacheTorrent) OnEvict(fn func(piece int)) { t.hub.set(t.ih, fn) }
