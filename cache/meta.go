package cache

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	badger "github.com/dgraph-io/badger/v4"
)

// PutMeta stores a torrent's metainfo (the .torrent file or its info
// dictionary) so a torrent added by magnet comes back after a restart without
// asking the swarm. Metainfo does not count against the capacity and is never
// evicted; DropTorrent removes it.
func (c *Cache) PutMeta(ih InfoHash, torrentBytes []byte) error {
	if len(torrentBytes) == 0 {
		return fmt.Errorf("cache: put metainfo of %x: empty", ih)
	}
	if len(torrentBytes) > valueLogSize/2 {
		return fmt.Errorf("cache: put metainfo of %x: %s is too large", ih, formatSize(int64(len(torrentBytes))))
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.life.RUnlock()
	if err := c.guard.admit(int64(len(torrentBytes))); err != nil {
		return err
	}
	err := c.update(func(txn *badger.Txn) error { return txn.Set(metaKeyOf(ih), torrentBytes) })
	if err != nil {
		return fmt.Errorf("cache: put metainfo of %x: %w", ih, storeErr(err))
	}
	c.mu.Lock()
	c.torrentLocked(ih).meta = true
	c.mu.Unlock()
	return nil
}

// Meta returns a copy of the metainfo stored by PutMeta, or an error
// wrapping ErrNotFound.
func (c *Cache) Meta(ih InfoHash) ([]byte, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	defer c.life.RUnlock()
	var out []byte
	err := c.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKeyOf(ih))
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: no metainfo for %x", ErrNotFound, ih)
	}
	if err != nil {
		return nil, fmt.Errorf("cache: read metainfo of %x: %w", ih, err)
	}
	return out, nil
}

// Torrents returns the info-hashes with stored pieces or metainfo, sorted.
func (c *Cache) Torrents() []InfoHash {
	c.mu.Lock()
	out := make([]InfoHash, 0, len(c.torrents))
	for ih, t := range c.torrents {
		if t.present > 0 || t.meta {
			out = append(out, ih)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b InfoHash) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Usage is one torrent's share of the cache.
type Usage struct {
	InfoHash InfoHash
	Pieces   int   // stored pieces
	Bytes    int64 // their total size
}

// Usage returns per-torrent use for the torrents Torrents lists, in the
// same order.
func (c *Cache) Usage() []Usage {
	c.mu.Lock()
	out := make([]Usage, 0, len(c.torrents))
	for ih, t := range c.torrents {
		if t.present > 0 || t.meta {
			out = append(out, Usage{InfoHash: ih, Pieces: t.present, Bytes: t.bytes})
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Usage) int { return bytes.Compare(a.InfoHash[:], b.InfoHash[:]) })
	return out
}
