package cache

import (
	"errors"
	"fmt"
	"slices"

	badger "github.com/dgraph-io/badger/v4"
)

// checkFormat stamps a new store with formatVersion and refuses a store
// written in another format.
func (c *Cache) checkFormat() error {
	var have []byte
	err := c.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if err != nil {
			return err
		}
		have, err = item.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return c.update(func(txn *badger.Txn) error { return txn.Set(formatKey, []byte{formatVersion}) })
	case err != nil:
		return fmt.Errorf("cache: read store format in %s: %w", c.dir, err)
	case len(have) != 1 || have[0] != formatVersion:
		return fmt.Errorf("cache: %s holds a store in format %v; this swarmfs reads format %d (move the directory away to start afresh)",
			c.dir, have, formatVersion)
	}
	return nil
}

// load rebuilds the index from the piece records (small values stored inline
// in the LSM tree) and the piece keys (keys only): no piece data is read.
// Records without a piece and pieces without a record, which only a bug could
// leave, are deleted. Verification of the data is left to each piece's first
// read.
func (c *Cache) load() error {
	var all []*entry
	var maxSeq uint64
	var orphans [][]byte
	err := c.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false

		// Records first: entries start in stateWriting and become present
		// when their piece key shows up.
		opts.Prefix = []byte{kindRecord}
		it := txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			ih, piece, ok := parsePieceKey(item.Key())
			var rec record
			err := item.Value(func(v []byte) error {
				var err error
				rec, err = decodeRecord(v)
				return err
			})
			if !ok || err != nil {
				orphans = append(orphans, item.KeyCopy(nil))
				continue
			}
			t := c.torrentLocked(ih)
			e := &entry{t: t, piece: piece, size: rec.size, sum: rec.sum, seq: rec.seq, state: stateWriting}
			t.pieces[piece] = e
			all = append(all, e)
			maxSeq = max(maxSeq, rec.seq)
		}
		it.Close()

		opts.Prefix = []byte{kindPiece}
		it = txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			ih, piece, ok := parsePieceKey(item.Key())
			var e *entry
			if ok {
				e = c.lookupLocked(ih, piece)
			}
			if e == nil {
				orphans = append(orphans, item.KeyCopy(nil))
				continue
			}
			e.state = statePresent
		}
		it.Close()

		opts.Prefix = []byte{kindMeta}
		it = txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != metaKeyLen {
				continue
			}
			var ih InfoHash
			copy(ih[:], k[1:])
			c.torrentLocked(ih).meta = true
		}
		it.Close()
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: load index from %s: %w", c.dir, err)
	}

	// Index the present entries, least recent first so the most recent ends
	// at the front of the LRU list.
	live := all[:0]
	for _, e := range all {
		if e.state != statePresent {
			orphans = append(orphans, pieceKeyOf(kindRecord, e.ih(), e.piece))
			delete(e.t.pieces, e.piece)
			c.forgetTorrentLocked(e.t)
			continue
		}
		live = append(live, e)
	}
	slices.SortFunc(live, func(a, b *entry) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for _, e := range live {
		e.t.present++
		e.t.bytes += int64(e.size)
		c.used += int64(e.size)
		c.lru.pushFront(e)
		// Badger reads the newest value-log file through its mapping at
		// Open; the first sweep unmaps those pages again.
		c.markMappedLocked(e)
	}

	c.clock = maxSeq + 1
	// Flushing recency rewrites records with the seq of the last read; keep
	// clock past anything the store holds so order stays meaningful.

	if len(orphans) > 0 {
		c.logf("cache: removing %d inconsistent keys from %s", len(orphans), c.dir)
		for len(orphans) > 0 {
			n := min(len(orphans), deleteBatch)
			batch := orphans[:n]
			orphans = orphans[n:]
			err := c.update(func(txn *badger.Txn) error {
				for _, k := range batch {
					if err := txn.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("cache: clean index in %s: %w", c.dir, err)
			}
		}
	}
	return nil
}
