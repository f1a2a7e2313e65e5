package storage

import (
	"sync"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// hub fans the cache's single eviction hook out to the torrents using it.
type hub struct {
	mu  sync.Mutex // guards fns; never held while calling one
	fns map[metainfo.Hash]func(piece int)
}

func (h *hub) evicted(ih cache.InfoHash, piece int) {
	h.mu.Lock()
	fn := h.fns[metainfo.Hash(ih)]
	h.mu.Unlock()
	if fn != nil {
		fn(piece)
	}
}

func (h *hub) set(ih metainfo.Hash, fn func(int)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fn == nil {
		delete(h.fns, ih)
	} else {
		h.fns[ih] = fn
	}
}
