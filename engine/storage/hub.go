package storage

import (
	"sync"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// hub fans the cache's single eviction hook out to the torrents using it.
type hub struct {
	mu sync.Mutex // guards ts; never held while calling into one
	ts map[metainfo.Hash]*cacheTorrent
}

func (h *hub) evicted(ih cache.InfoHash, piece int) {
	h.mu.Lock()
	t := h.ts[metainfo.Hash(ih)]
	h.mu.Unlock()
	if t != nil {
		t.evicted(piece)
	}
}

func (h *hub) add(t *cacheTorrent) {
	h.mu.Lock()
	h.ts[t.ih] = t
	h.mu.Unlock()
}

// remove unregisters t, unless a newer store of the same torrent (removed
// and added again) took its place.
func (h *hub) remove(t *cacheTorrent) {
	h.mu.Lock()
	if h.ts[t.ih] == t {
		delete(h.ts, t.ih)
	}
	h.mu.Unlock()
}
