package cache

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	badger "github.com/dgraph-io/badger/v4"
)

// checkFormat stamps a new store with formatVersion and refuses a store
// written in another format, but for format 1, an earlier swarmfs's store of
// pieces in badger's value log: its pieces are dropped (they download again
// when read; a cache may lose pieces, never hand out wrong ones), its
// metainfo and peer notes kept, and it becomes a store of this format.
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
		return c.setFormat()
	case err != nil:
		return fmt.Errorf("cache: read store format in %s: %w", c.dir, err)
	case len(have) == 1 && have[0] == 1:
		n := c.countKeys(kindRecord)
		c.logf("cache: %s holds pieces in the format of an earlier swarmfs (1): dropping its %d pieces, which download again when read; torrents and their metainfo are kept",
			c.dir, n)
		// Both prefixes go before the new format is stamped: a crash
		// in between finds format 1 again and drops again.
		if err := c.db.DropPrefix([]byte{kindPiece}, []byte{kindRecord}); err != nil {
			return fmt.Errorf("cache: drop the pieces of format 1 in %s: %w", c.dir, err)
		}
		c.garbage = true // the value log is all garbage but for metainfo
		return c.setFormat()
	case len(have) != 1 || have[0] != formatVersion:
		return fmt.Errorf("cache: %s holds a store in format %v; this swarmfs reads format %d (move the directory away to start afresh)",
			c.dir, have, formatVersion)
	}
	return nil
}

func (c *Cache) setFormat() error {
	return c.update(func(txn *badger.Txn) error { return txn.Set(formatKey, []byte{formatVersion}) })
}

// countKeys counts the keys of one kind.
func (c *Cache) countKeys(kind byte) int {
	n := 0
	_ = c.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{kind}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n
}

// load rebuilds the index from the piece records (small values stored inline
// in the LSM tree) and the list of piece files: no piece data is read.
// Records whose slot lies outside their file, which a lost or truncated file
// leaves, are deleted; so are files without records, and data in a file
// outside any record's slot is punched (punchOrphans): a crash between a
// piece's write and its record, or between a record's delete and the punch,
// leaves such data. Verification of the data is left to each piece's first
// read.
func (c *Cache) load() error {
	var all []*entry
	var maxSeq uint64
	var orphans [][]byte
	err := c.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false

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
			e.file = c.fileLocked(t, rec.shift)
			t.shift = max(t.shift, rec.shift)
			t.pieces[piece] = e
			all = append(all, e)
			maxSeq = max(maxSeq, rec.seq)
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
	if err := c.loadFiles(all); err != nil {
		return err
	}

	// Index the present entries, least recent first so the most recent ends
	// at the front of the LRU list.
	live := all[:0]
	for _, e := range all {
		if e.state != statePresent {
			orphans = append(orphans, pieceKeyOf(kindRecord, e.ih(), e.piece))
			delete(e.t.pieces, e.piece)
			if d := c.releaseLocked(e); d != nil {
				d.close()
			}
			c.forgetTorrentLocked(e.t)
			continue
		}
		live = append(live, e)
	}
	slices.SortFunc(live, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	for _, e := range live {
		e.t.present++
		e.t.bytes += int64(e.size)
		c.used += int64(e.size)
		c.lru.pushFront(e)
	}

	c.clock = maxSeq + 1
	// Flushing recency rewrites records with the seq of the last read; keep
	// clock past anything the store holds so order stays meaningful.

	if len(orphans) > 0 {
		c.logf("cache: removing %d inconsistent records from %s", len(orphans), c.dir)
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

// loadFiles goes through the piece files: it marks present the entries whose
// slot lies inside their file, removes files no entry refers to, and punches
// data outside the entries' slots.
func (c *Cache) loadFiles(all []*entry) error {
	dir := filepath.Join(c.dir, piecesDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cache: list %s: %w", dir, err)
	}
	var strays, freed int64
	for _, de := range ents {
		ih, shift, ok := parseDataFileName(de.Name())
		if !ok || !de.Type().IsRegular() {
			c.logf("cache: ignoring %s, which is not a piece file", filepath.Join(dir, de.Name()))
			continue
		}
		path := filepath.Join(dir, de.Name())
		var d *dataFile
		if t := c.torrents[ih]; t != nil {
			d = t.files[shift]
		}
		if d == nil {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cache: remove %s: %w", path, err)
			}
			strays++
			continue
		}
		// Opened once: the descriptor stays with d for the reads to come.
		f, err := d.file()
		if err != nil {
			return fmt.Errorf("cache: open %s: %w", path, err)
		}
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("cache: stat %s: %w", path, err)
		}
		var keep []slot
		for _, e := range c.torrents[ih].pieces {
			lo := int64(e.piece) << shift
			if e.file == d && lo+int64(e.size) <= info.Size() {
				e.state = statePresent
				keep = append(keep, slot{lo, lo + int64(1)<<shift})
			}
		}
		slices.SortFunc(keep, func(a, b slot) int { return cmp.Compare(a.lo, b.lo) })
		n, err := punchOrphans(f, keep)
		freed += n
		if err != nil {
			c.logf("cache: free the space of orphaned data in %s: %v", path, err)
		}
	}
	if strays > 0 || freed > 0 {
		c.logf("cache: removed %d piece files without pieces and freed %s of data without a record, left by a crash", strays, formatSize(freed))
	}
	return nil
}
