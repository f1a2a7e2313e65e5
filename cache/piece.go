package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	badger "github.com/dgraph-io/badger/v4"
)

// pieceSum is the checksum stored with every piece. It covers the key as well
// as the data, so a value that somehow surfaced under another key would fail.
func pieceSum(ih InfoHash, piece uint32, data []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.Write(ih[:])
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], piece)
	_, _ = d.Write(b[:])
	_, _ = d.Write(data)
	return d.Sum64()
}

func checkPiece(piece int) error {
	if piece < 0 || piece > math.MaxUint32 {
		return fmt.Errorf("cache: piece index %d out of range", piece)
	}
	return nil
}

// lookupLocked returns the entry for a piece in any state, or nil.
func (c *Cache) lookupLocked(ih InfoHash, piece uint32) *entry {
	t := c.torrents[ih]
	if t == nil {
		return nil
	}
	return t.pieces[piece]
}

func (c *Cache) torrentLocked(ih InfoHash) *torrent {
	t := c.torrents[ih]
	if t == nil {
		t = &torrent{ih: ih, pieces: make(map[uint32]*entry)}
		c.torrents[ih] = t
	}
	return t
}

// forgetTorrentLocked drops t from the index once nothing of it is stored.
func (c *Cache) forgetTorrentLocked(t *torrent) {
	if len(t.pieces) == 0 && !t.meta && c.torrents[t.ih] == t {
		delete(c.torrents, t.ih)
	}
}

// touchLocked makes e the most recently used piece. The new recency reaches
// badger only with the next flush (flushInterval), never on the read path.
func (c *Cache) touchLocked(e *entry) {
	e.seq = c.clock
	c.clock++
	if e.next != nil {
		c.lru.moveToFront(e)
	}
	if !e.dirty {
		e.dirty = true
		c.dirty = append(c.dirty, e)
	}
}

// Put stores a verified piece. If the cache would exceed its capacity, the
// least recently used unpinned pieces are evicted first (OnEvict is called
// for each); if that cannot make room, Put fails with an error wrapping
// ErrFull and evicts nothing. Putting a piece already stored and verified is
// a cheap no-op. data is not retained after Put returns.
func (c *Cache) Put(ih InfoHash, piece int, data []byte) error {
	if err := checkPiece(piece); err != nil {
		return err
	}
	size := int64(len(data))
	switch {
	case size == 0:
		return fmt.Errorf("cache: put piece %d of %x: empty piece", piece, ih)
	case size > c.vlogSize:
		return fmt.Errorf("%w: piece %d of %x: %s is larger than the largest piece the store takes (%s)",
			ErrTooLarge, piece, ih, formatSize(size), formatSize(c.vlogSize))
	case size > c.capacity:
		return fmt.Errorf("%w: piece %d of %x (%s) is larger than the cache capacity (%s)",
			ErrTooLarge, piece, ih, formatSize(size), formatSize(c.capacity))
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.life.RUnlock()
	p := uint32(piece)
	sum := pieceSum(ih, p, data)

	// The disk first: a Put refused for a full disk must not have evicted
	// anything (deleting pieces gives no disk space back until value-log
	// GC, which the reserve is kept for).
	if err := c.guard.admit(size); err != nil {
		c.kickGC()
		return fmt.Errorf("%w (putting piece %d of %x)", err, piece, ih)
	}
	c.mu.Lock()
	var e *entry
	for {
		if c.closed {
			c.mu.Unlock()
			c.guard.unadmit(size)
			return ErrClosed
		}
		e = c.lookupLocked(ih, p)
		if e == nil || e.state == statePresent {
			break
		}
		c.cond.Wait() // another Put or an eviction of this piece is in flight
	}
	replace := e != nil
	if replace {
		if e.verified {
			c.touchLocked(e)
			c.mu.Unlock()
			c.guard.unadmit(size)
			return nil
		}
		// Stored before this process started and not yet read: rewrite it,
		// the stored copy may be the one that would fail its check.
		c.unlistLocked(e)
	} else {
		e = &entry{t: c.torrentLocked(ih), piece: p}
		e.t.pieces[p] = e
	}
	e.state = stateWriting
	e.size, e.sum, e.verified, e.dirty = int32(size), sum, false, false
	e.seq = c.clock
	c.clock++
	c.used += size
	victims, err := c.victimsLocked()
	if err != nil {
		c.abortLocked(e)
		c.mu.Unlock()
		c.guard.unadmit(size)
		return fmt.Errorf("%w (putting piece %d of %x)", err, piece, ih)
	}
	c.mu.Unlock()

	if len(victims) > 0 {
		if err := c.evict(victims, true); err != nil {
			c.abort(e)
			c.guard.unadmit(size)
			return err
		}
	}
	rec := record{size: int32(size), sum: sum, seq: e.seq}.encode()
	write := func(txn *badger.Txn) error {
		if err := txn.Set(pieceKeyOf(kindPiece, ih, p), data); err != nil {
			return err
		}
		return txn.Set(pieceKeyOf(kindRecord, ih, p), rec)
	}
	if replace {
		c.flushMu.RLock()
		err = c.update(write)
		c.flushMu.RUnlock()
	} else {
		err = c.update(write)
	}
	if err != nil {
		c.abort(e)
		return fmt.Errorf("cache: put piece %d of %x: %w", piece, ih, storeErr(err))
	}

	c.mu.Lock()
	e.state, e.verified = statePresent, true
	e.t.present++
	e.t.bytes += size
	if c.pins[pinKey{ih, p}] == 0 {
		c.lru.pushFront(e)
	}
	sweep := c.markMappedLocked(e)
	c.lastPut = e
	c.cond.Broadcast()
	c.mu.Unlock()
	c.noteWritten(size)
	if sweep {
		// Sweep here rather than leave it to the pager: the pager can be
		// held up (in writeback, behind badger's lock of a file being
		// closed, or waiting for a CPU), and a fast writer maps tens of
		// MiB meanwhile. Here no Put maps more than 2*KeepMapped plus a
		// piece before the sweep, at the cost of one badger lookup per
		// 2*KeepMapped written (see sweep).
		if c.sweepMu.TryLock() {
			c.sweep(c.keepMapped)
			c.sweepMu.Unlock()
		} else {
			c.kickPager() // sweeping already; it may have listed e too late
		}
	}
	return nil
}

// unlistLocked takes a present entry out of the LRU list, its torrent's
// present totals and used.
func (c *Cache) unlistLocked(e *entry) {
	c.lru.remove(e)
	e.t.present--
	e.t.bytes -= int64(e.size)
	c.used -= int64(e.size)
}

// abortLocked forgets an entry whose write will not happen.
func (c *Cache) abortLocked(e *entry) {
	c.used -= int64(e.size)
	delete(e.t.pieces, e.piece)
	c.forgetTorrentLocked(e.t)
	c.cond.Broadcast()
}

func (c *Cache) abort(e *entry) {
	c.mu.Lock()
	c.abortLocked(e)
	c.mu.Unlock()
}

// storeErr marks a full disk as ErrDiskFull.
func storeErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

// update runs fn in a read-write transaction and commits it at the next
// timestamp. The store is opened in badger's managed mode: we hand out commit
// timestamps and read at the newest version, so a read never waits for
// writes in flight (in normal mode every new transaction waits until the
// latest commit is applied, which stalls readers behind a piece write and
// behind the msync badger does when it rotates a value-log file). Writes
// that badger blocks for the memtable flush maintenance forces (see compact)
// are retried.
func (c *Cache) update(fn func(txn *badger.Txn) error) error {
	if raceBuild {
		c.raceWrites.RLock()
		defer c.raceWrites.RUnlock()
	}
	delay := 500 * time.Microsecond
	deadline := time.Now().Add(time.Minute)
	for {
		txn := c.db.NewTransactionAt(math.MaxUint64, true)
		if err := fn(txn); err != nil {
			txn.Discard()
			return err
		}
		err := txn.CommitAt(c.ts.Add(1), nil)
		if !errors.Is(err, badger.ErrBlockedWrites) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// ReadAt copies bytes of a stored piece starting at off into p, straight from
// badger's memory-mapped value log (one copy). It returns io.EOF when the
// range reaches the end of the piece, and an error wrapping ErrNotFound when
// the piece is not stored. The first read of a piece stored before this
// process started verifies the whole piece against its checksum; a piece that
// fails is dropped (OnEvict is called) and ErrNotFound returned.
func (c *Cache) ReadAt(ih InfoHash, piece int, p []byte, off int64) (int, error) {
	if err := checkPiece(piece); err != nil {
		return 0, err
	}
	if !c.enter() {
		return 0, ErrClosed
	}
	defer c.life.RUnlock()
	pi := uint32(piece)
	c.mu.Lock()
	e := c.lookupLocked(ih, pi)
	if e == nil || e.state != statePresent {
		c.mu.Unlock()
		return 0, ErrNotFound
	}
	size, sum, verify := int64(e.size), e.sum, !e.verified
	c.touchLocked(e)
	c.mu.Unlock()

	if off < 0 {
		return 0, fmt.Errorf("cache: read piece %d of %x: negative offset %d", piece, ih, off)
	}
	if off >= size {
		return 0, io.EOF
	}
	key := pieceKeyOf(kindPiece, ih, pi)
	var n int
	var bad string
	var err error
	mapped := false // read through badger's mapping (see direct.go)
	// Badger logs and swallows value-log read errors, handing back an empty
	// value: the size check catches that. Such a failure is also what a read
	// sees when it races a value-log GC that moved the piece and deleted the
	// old file, so a failed read is retried (with a fresh transaction, which
	// finds the new location) before the piece is declared broken.
	for attempt := 0; attempt < 3; attempt++ {
		n, bad = 0, ""
		err = c.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(key)
			if err != nil {
				return err
			}
			if !verify {
				if vp, ok := valuePointerOf(item); ok {
					want := p[:min(int64(len(p)), size-off)]
					if c.files.read(key, vp, size, want, off) {
						n = len(want)
						return nil
					}
				}
			}
			mapped = true
			return item.Value(func(v []byte) error {
				switch {
				case int64(len(v)) != size:
					bad = fmt.Sprintf("size (%d bytes, want %d)", len(v), size)
				case verify && pieceSum(ih, pi, v) != sum:
					bad = "checksum"
				default:
					n = copy(p, v[off:])
				}
				return nil
			})
		})
		if (err == nil && bad == "") || errors.Is(err, badger.ErrKeyNotFound) {
			break
		}
	}
	if errors.Is(err, badger.ErrKeyNotFound) {
		bad, err = "presence", nil
	}
	if err != nil {
		return 0, fmt.Errorf("cache: read piece %d of %x: %w", piece, ih, err)
	}
	if bad != "" {
		if c.dropBroken(e, sum, bad) {
			return 0, fmt.Errorf("%w: piece %d of %x failed its %s check and was dropped",
				ErrNotFound, piece, ih, bad)
		}
		return 0, ErrNotFound // rewritten meanwhile; the caller may retry
	}
	if verify || mapped {
		c.mu.Lock()
		if verify && e.state == statePresent && e.sum == sum {
			e.verified = true
		}
		sweep := mapped && e.state == statePresent && c.markMappedLocked(e)
		c.mu.Unlock()
		if sweep {
			c.kickPager()
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// dropBroken evicts e after a failed check, unless it changed since the read
// that failed. It reports whether it dropped it.
func (c *Cache) dropBroken(e *entry, sum uint64, what string) bool {
	c.mu.Lock()
	if e.state != statePresent || e.sum != sum {
		c.mu.Unlock()
		return false
	}
	c.unlistLocked(e)
	e.state = stateEvicting
	c.mu.Unlock()
	c.logf("cache: piece %d of %x failed its %s check; dropped", e.piece, e.ih(), what)
	if err := c.evict([]*entry{e}, true); err != nil {
		c.logf("cache: %v", err)
	}
	return true
}

// Has reports whether a piece is stored, from the in-memory index alone.
func (c *Cache) Has(ih InfoHash, piece int) bool {
	if piece < 0 || piece > math.MaxUint32 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.lookupLocked(ih, uint32(piece))
	return e != nil && e.state == statePresent && !c.closed
}

// Pieces returns the stored pieces of a torrent in increasing order, from
// the in-memory index alone.
func (c *Cache) Pieces(ih InfoHash) []int {
	c.mu.Lock()
	t := c.torrents[ih]
	var out []int
	if t != nil && !c.closed {
		out = make([]int, 0, t.present)
		for p, e := range t.pieces {
			if e.state == statePresent {
				out = append(out, int(p))
			}
		}
	}
	c.mu.Unlock()
	slices.Sort(out)
	return out
}

// Pin protects a piece from eviction until a matching Unpin. Pins are counted
// and may be taken before the piece is stored (a reader's readahead window).
// Pins live in memory only.
func (c *Cache) Pin(ih InfoHash, piece int) {
	if piece < 0 || piece > math.MaxUint32 {
		return
	}
	k := pinKey{ih, uint32(piece)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins[k]++
	if c.pins[k] == 1 {
		if e := c.lookupLocked(ih, k.piece); e != nil && e.state == statePresent {
			c.lru.remove(e)
		}
	}
}

// Unpin releases one Pin. An Unpin without a Pin is ignored. A piece whose
// last pin goes becomes the most recently used.
func (c *Cache) Unpin(ih InfoHash, piece int) {
	if piece < 0 || piece > math.MaxUint32 {
		return
	}
	k := pinKey{ih, uint32(piece)}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.pins[k]
	switch {
	case n <= 0:
		return
	case n > 1:
		c.pins[k] = n - 1
		return
	}
	delete(c.pins, k)
	if e := c.lookupLocked(ih, k.piece); e != nil && e.state == statePresent {
		c.lru.pushFront(e)
	}
}
