package cache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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

// evict deletes entries already marked stateEvicting: once nobody reads
// them, their records from badger, then their data (a hole punched over each
// slot), then them from the index; and (if notify) tells the OnEvict
// callback. Must not be called with mu or flushMu held.
func (c *Cache) evict(victims []*entry, notify bool) error {
	c.mu.Lock()
	for _, e := range victims {
		for e.readers > 0 {
			c.cond.Wait()
		}
	}
	c.mu.Unlock()

	c.flushMu.RLock()
	err := c.deleteRecords(victims)
	c.flushMu.RUnlock()
	if err == nil {
		// A crash before the punch leaves the data without a record; the
		// next Open punches it (see punchOrphans). After a failed delete
		// the data stays: the next Open finds (and verifies) the piece.
		var freed int64
		for _, e := range victims {
			if f, ferr := e.file.file(); ferr == nil && c.punch(f, int64(e.piece)<<e.file.shift, e.file.shift) {
				freed += int64(e.size)
			}
		}
		c.guard.release(freed)
	}

	var closing []*dataFile
	c.mu.Lock()
	for _, e := range victims {
		if e.t.pieces[e.piece] == e {
			delete(e.t.pieces, e.piece)
		}
		if d := c.releaseLocked(e); d != nil {
			closing = append(closing, d)
		}
		c.forgetTorrentLocked(e.t)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	for _, d := range closing {
		d.close()
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

// deleteRecords deletes the records of entries, in batches.
func (c *Cache) deleteRecords(es []*entry) error {
	for len(es) > 0 {
		n := min(len(es), deleteBatch)
		batch := es[:n]
		es = es[n:]
		err := c.update(func(txn *badger.Txn) error {
			for _, e := range batch {
				if err := txn.Delete(pieceKeyOf(kindRecord, e.ih(), e.piece)); err != nil {
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
	if ferr := c.removeFiles(t); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if hadMeta {
		merr := c.update(func(txn *badger.Txn) error {
			if err := txn.Delete(metaKeyOf(ih)); err != nil {
				return err
			}
			return txn.Delete(peersKeyOf(ih))
		})
		c.mu.Lock()
		c.forgetTorrentLocked(t)
		c.garbage = true
		c.mu.Unlock()
		if merr != nil {
			err = errors.Join(err, fmt.Errorf("cache: drop metainfo of %x: %w", ih, merr))
		}
		c.kickGC()
	}
	return err
}

// removeFiles deletes t's piece files once no piece of it is stored or being
// written. It holds mu meanwhile, so no Put can open one of them again
// before it is gone.
func (c *Cache) removeFiles(t *torrent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.torrents[t.ih]; len(t.pieces) > 0 || (cur != nil && len(cur.pieces) > 0) {
		return nil // a Put running; the next Open removes what is left
	}
	names, err := filepath.Glob(filepath.Join(c.dir, piecesDir, hex.EncodeToString(t.ih[:])+"-*"))
	var errs []error
	for _, name := range names {
		if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			errs = append(errs, rerr)
		}
	}
	if err != nil || len(errs) > 0 {
		return fmt.Errorf("cache: remove the piece files of %x: %w", t.ih, errors.Join(append(errs, err)...))
	}
	return nil
}
