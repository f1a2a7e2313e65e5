package cache

import (
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// deleteBatch bounds the pieces deleted per transaction, well inside badger's
// batch limits (about 3,200 entries with a 2 MiB memtable).
const deleteBatch = 512

// victimsLocked picks least recently used unpinned pieces until used fits the
// capacity, and marks them stateEvicting. If even evicting every unpinned
// piece would not be enough, it picks nothing and returns ErrFull (wrapped).
func (c *Cache) victimsLocked() ([]*entry, error) {
	over := c.used - c.capacity
	if over <= 0 {
		return nil, nil
	}
	if over > c.lru.bytes {
		return nil, fmt.Errorf("%w: %s over capacity and only %s of unpinned pieces to evict (%s pinned or in flight)",
			ErrFull, formatSize(over), formatSize(c.lru.bytes), formatSize(c.used-c.lru.bytes))
	}
	var victims []*entry
	for over > 0 {
		e := c.lru.back()
		c.unlistLocked(e)
		e.state = stateEvicting
		over -= int64(e.size)
		victims = append(victims, e)
	}
	return victims, nil
}

// evict deletes entries already marked stateEvicting from the store, then
// from the index, and (if notify) tells the OnEvict callback. Must not be
// called with mu or flushMu held.
func (c *Cache) evict(victims []*entry, notify bool) error {
	c.flushMu.RLock()
	err := c.deletePieces(victims)
	c.flushMu.RUnlock()

	var freed int64
	c.mu.Lock()
	for _, e := range victims {
		if e.t.pieces[e.piece] == e {
			delete(e.t.pieces, e.piece)
		}
		c.forgetTorrentLocked(e.t)
		freed += int64(e.size)
	}
	// Even after a failed delete the pieces leave the index: at worst their
	// keys linger until the next Open finds (and verifies) them again.
	c.garbage += freed
	kick := c.garbage >= c.trigger
	c.cond.Broadcast()
	c.mu.Unlock()
	if kick {
		c.kickGC()
	}
	if notify {
		if fn := c.onEvict.Load(); fn != nil {
			for _, e := range victims {
				(*fn)(e.ih(), int(e.piece))
			}
		}
	}
	if err != nil {
		return fmt.Errorf("cache: evict %d pieces: %w", len(victims), err)
	}
	return nil
}

// deletePieces deletes the piece and record keys of entries, each piece's
// pair in one transaction.
func (c *Cache) deletePieces(es []*entry) error {
	for len(es) > 0 {
		n := min(len(es), deleteBatch)
		batch := es[:n]
		es = es[n:]
		err := c.update(func(txn *badger.Txn) error {
			for _, e := range batch {
				ih := e.ih()
				if err := txn.Delete(pieceKeyOf(kindPiece, ih, e.piece)); err != nil {
					return err
				}
				if err := txn.Delete(pieceKeyOf(kindRecord, ih, e.piece)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// kickGC wakes the maintenance goroutine without blocking.
func (c *Cache) kickGC() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// DropTorrent removes every piece of a torrent (pinned ones too) and its
// metainfo. OnEvict is not called. Pieces whose Put is still running when
// DropTorrent starts may remain.
func (c *Cache) DropTorrent(ih InfoHash) error {
	if !c.enter() {
		return ErrClosed
	}
	defer c.life.RUnlock()

	c.mu.Lock()
	t := c.torrents[ih]
	var victims []*entry
	hadMeta := false
	if t != nil {
		for _, e := range t.pieces {
			if e.state == statePresent {
				c.unlistLocked(e)
				e.state = stateEvicting
				victims = append(victims, e)
			}
		}
		hadMeta = t.meta
		t.meta = false
	}
	c.mu.Unlock()
	if t == nil {
		return nil
	}
	err := c.evict(victims, false)
	if hadMeta {
		merr := c.update(func(txn *badger.Txn) error {
			if err := txn.Delete(metaKeyOf(ih)); err != nil {
				return err
			}
			return txn.Delete(peersKeyOf(ih))
		})
		c.mu.Lock()
		c.forgetTorrentLocked(t)
		c.mu.Unlock()
		if merr != nil {
			err = errors.Join(err, fmt.Errorf("cache: drop metainfo of %x: %w", ih, merr))
		}
	}
	c.kickGC()
	return err
}
