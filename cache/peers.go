package cache

import (
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// MaxPeersLen bounds what PutPeers keeps per torrent.
const MaxPeersLen = 4 << 10

// PutPeers stores b beside a torrent's metainfo: bytes the cache does not
// read, with which the caller remembers the peers that served the torrent
// best, to dial them first when it starts again (before trackers and the
// DHT answer). It replaces what was there. The torrent must have metainfo
// (PutMeta), else the error wraps ErrNotFound; DropTorrent removes both.
// Like metainfo, peers do not count against the capacity.
func (c *Cache) PutPeers(ih InfoHash, b []byte) error {
	if len(b) > MaxPeersLen {
		return fmt.Errorf("cache: put peers of %x: %d bytes, more than %d", ih, len(b), MaxPeersLen)
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.life.RUnlock()
	c.mu.Lock()
	t := c.torrents[ih]
	hasMeta := t != nil && t.meta
	c.mu.Unlock()
	if !hasMeta {
		return fmt.Errorf("%w: no metainfo for %x, so no peers either", ErrNotFound, ih)
	}
	if err := c.guard.admit(int64(len(b))); err != nil {
		return err
	}
	if err := c.update(func(txn *badger.Txn) error { return txn.Set(peersKeyOf(ih), b) }); err != nil {
		return fmt.Errorf("cache: put peers of %x: %w", ih, storeErr(err))
	}
	return nil
}

// Peers returns a copy of what PutPeers stored, or an error wrapping
// ErrNotFound.
func (c *Cache) Peers(ih InfoHash) ([]byte, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	defer c.life.RUnlock()
	var out []byte
	err := c.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(peersKeyOf(ih))
		if err != nil {
			return err
		}
		if item.ValueSize() > MaxPeersLen {
			return fmt.Errorf("%d bytes, more than %d", item.ValueSize(), MaxPeersLen)
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: no peers for %x", ErrNotFound, ih)
	}
	if err != nil {
		return nil, fmt.Errorf("cache: read peers of %x: %w", ih, err)
	}
	return out, nil
}
