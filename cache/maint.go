package cache

import (
	"errors"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// The maintenance goroutine, owned by the Cache (started by Open, stopped and
// waited for by Close), persists read recency and reclaims the value-log
// space of dropped metainfo.

const (
	// gcRatio: a value-log file is rewritten when at least this share of
	// it is garbage.
	gcRatio = 0.5
	// gcMaxRewrites bounds one collection, so Close never waits for long.
	gcMaxRewrites = 64
)

func (c *Cache) maintain() {
	defer c.done.Done()
	flush := time.NewTicker(flushInterval)
	defer flush.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-flush.C:
			if err := c.flushRecency(); err != nil {
				c.logf("cache: persist read recency: %v", err)
			}
		case <-c.kick:
			c.collect()
		}
	}
}

func (c *Cache) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// flushRecency writes the records of pieces read since the last flush, so
// that LRU order survives a restart. Reads only touch memory; a crash loses
// at most flushInterval of recency, which makes the order after a restart
// approximate, never wrong about what is stored.
func (c *Cache) flushRecency() error {
	if free, err := c.guard.room(); err == nil && free < 0 {
		// A disk inside its reserve (a store reopened on a full disk)
		// takes no writes, not even these: records go through badger's
		// memtable log, a mapping that a full disk turns into SIGBUS.
		// The order waits for the next flush.
		return nil
	}
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	type kv struct{ k, v []byte }
	c.mu.Lock()
	recs := make([]kv, 0, len(c.dirty))
	for _, e := range c.dirty {
		if !e.dirty {
			continue
		}
		e.dirty = false
		if e.state != statePresent {
			continue
		}
		recs = append(recs, kv{
			pieceKeyOf(kindRecord, e.ih(), e.piece),
			record{size: e.size, sum: e.sum, seq: e.seq, shift: e.file.shift}.encode(),
		})
	}
	if cap(c.dirty) > 4096 {
		c.dirty = nil
	} else {
		c.dirty = c.dirty[:0]
	}
	c.mu.Unlock()

	for len(recs) > 0 {
		n := min(len(recs), deleteBatch)
		batch := recs[:n]
		recs = recs[n:]
		err := c.update(func(txn *badger.Txn) error {
			for _, r := range batch {
				if err := txn.Set(r.k, r.v); err != nil {
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

// collect reclaims value-log space after metainfo was dropped (or a store of
// format 1 dropped its pieces, see checkFormat). Pieces live in files of
// their own; only metainfo and peer notes larger than valueThreshold reach
// the value log.
//
// Badger's value-log GC only rewrites files whose discard statistics say they
// hold enough garbage, and those statistics are computed by LSM compactions
// alone; our memtables hold small records, so one fills only after tens of
// thousands of writes. So collect first forces a flush and a compaction
// (compact), then runs the GC while it finds files to rewrite.
func (c *Cache) collect() {
	c.gcMu.Lock()
	defer c.gcMu.Unlock()
	c.mu.Lock()
	garbage := c.garbage
	c.garbage = false
	c.mu.Unlock()
	// We only ever read the newest version of a key, so every older version
	// may go at the next compaction.
	c.db.SetDiscardTs(c.ts.Load())
	if !garbage {
		return
	}
	if err := c.compact(); err != nil {
		c.logf("cache: compact before value-log GC: %v", err)
	}
	c.runGC(gcRatio, gcMaxRewrites)
}

// runGC rewrites up to limit value-log files holding at least ratio garbage.
func (c *Cache) runGC(ratio float64, limit int) int {
	n := 0
	for n < limit && !c.stopping() {
		err := c.runValueLogGC(ratio)
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				c.logf("cache: value-log GC: %v", err)
			}
			break
		}
		n++
	}
	return n
}

// compact makes badger's discard statistics current: it flushes the
// memtables (DropPrefix of a throwaway key is the only public way to do that
// on demand; it blocks writes for the few milliseconds the flush takes, and
// update retries them), waits for the background compactors to move level 0
// down (NumLevelZeroTables is 1), then merges any remaining levels (Flatten).
func (c *Cache) compact() error {
	err := c.update(func(txn *badger.Txn) error { return txn.Set(flusherKey, []byte{1}) })
	if err != nil {
		return err
	}
	if err := c.db.DropPrefix(flusherKey); err != nil {
		return err
	}
	for i := 0; i < 100 && !c.stopping(); i++ {
		if lv := c.db.Levels(); len(lv) == 0 || lv[0].NumTables == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.stopping() {
		return nil
	}
	return c.db.Flatten(1)
}

// runValueLogGC is db.RunValueLogGC. Badger's GC reads the memtable's
// highest version (DB.MaxVersion, at the start of each rewrite) without
// synchronizing with the goroutine that writes it: a benign race on one
// aligned word, but one the race detector reports. Built with -race, the
// cache therefore holds its writes (raceWrites, see update) while the GC
// runs, so that `go test -race` keeps meaning something for our own code;
// normal builds do not pay that stall.
func (c *Cache) runValueLogGC(ratio float64) error {
	if raceBuild {
		c.raceWrites.Lock()
		defer c.raceWrites.Unlock()
	}
	return c.db.RunValueLogGC(ratio)
}
