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
// as the data, so a piece read from the wrong place would fail.
func pieceSum(ih InfoHash, piece uint32, data []byte) uint64 {
	d := newPieceHasher(ih, piece)
	_, _ = d.Write(data)
	return d.Sum64()
}

// newPieceHasher starts a pieceSum, for data written to it in parts.
func newPieceHasher(ih InfoHash, piece uint32) *xxhash.Digest {
	d := xxhash.New()
	_, _ = d.Write(ih[:])
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], piece)
	_, _ = d.Write(b[:])
	return d
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
	case size > c.MaxPiece():
		return fmt.Errorf("%w: piece %d of %x: %s is larger than the largest piece the cache takes (%s)",
			ErrTooLarge, piece, ih, formatSize(size), formatSize(c.MaxPiece()))
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.life.RUnlock()
	return c.put(ih, uint32(piece), data, pieceSum(ih, uint32(piece), data))
}

// put is Put inside enter.
func (c *Cache) put(ih InfoHash, p uint32, data []byte, sum uint64) error {
	piece, size := int(p), int64(len(data))
	// The disk first: a Put refused for a full disk must not have evicted
	// anything.
	if err := c.guard.admit(size); err != nil {
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
		c.unlistLocked(e)
		if size > int64(1)<<e.file.shift {
			// Stored with another size, too large for its slot: drop
			// that copy, then put this one afresh.
			e.state = stateEvicting
			c.mu.Unlock()
			c.guard.unadmit(size)
			if err := c.evict([]*entry{e}, false); err != nil {
				return fmt.Errorf("cache: put piece %d of %x: %w", piece, ih, err)
			}
			return c.put(ih, p, data, sum)
		}
		// Stored before this process started and not yet read: rewrite it
		// in place, the stored copy may be the one that would fail its
		// check. A reader verifying it meanwhile fails its check and finds
		// it not present (see dropBroken).
	} else {
		e = &entry{t: c.torrentLocked(ih), piece: p}
		e.t.pieces[p] = e
	}
	if e.file == nil {
		e.file = c.fileLocked(e.t, slotShiftLocked(e.t, size))
	}
	e.state = stateWriting
	e.size, e.sum, e.verified, e.dirty = int32(size), sum, false, false
	e.consumed.Store(false)
	e.seq = c.clock
	c.clock++
	c.used += size
	victims, err := c.victimsLocked()
	if err != nil {
		d := c.abortLocked(e)
		c.mu.Unlock()
		d.close()
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
	if err := c.writePiece(e, data); err != nil {
		c.abort(e)
		return fmt.Errorf("cache: put piece %d of %x: %w", piece, ih, storeErr(err))
	}
	rec := record{size: int32(size), sum: sum, seq: e.seq, shift: e.file.shift}.encode()
	write := func(txn *badger.Txn) error { return txn.Set(pieceKeyOf(kindRecord, ih, p), rec) }
	if replace {
		c.flushMu.RLock()
		err = c.update(write)
		c.flushMu.RUnlock()
	} else {
		err = c.update(write)
	}
	if err != nil {
		if f, ferr := e.file.file(); ferr == nil {
			c.punch(f, int64(p)<<e.file.shift, e.file.shift)
		}
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
	c.cond.Broadcast()
	c.mu.Unlock()
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

// abortLocked forgets an entry whose write will not happen. It returns the
// entry's piece file if that was its last reference, for the caller to close
// after releasing mu.
func (c *Cache) abortLocked(e *entry) *dataFile {
	c.used -= int64(e.size)
	delete(e.t.pieces, e.piece)
	d := c.releaseLocked(e)
	c.forgetTorrentLocked(e.t)
	c.cond.Broadcast()
	return d
}

func (c *Cache) abort(e *entry) {
	c.mu.Lock()
	d := c.abortLocked(e)
	c.mu.Unlock()
	d.close()
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

// ReadAt copies bytes of a stored piece starting at off into p, with one
// pread from its piece file. It returns io.EOF when the range reaches the end
// of the piece, and an error wrapping ErrNotFound when the piece is not
// stored. The first read of a piece stored before this process started
// verifies the whole piece against its checksum; a piece that fails is
// dropped (OnEvict is called) and ErrNotFound returned.
func (c *Cache) ReadAt(ih InfoHash, piece int, p []byte, off int64) (int, error) {
	if err := checkPiece(piece); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("cache: read piece %d of %x: negative offset %d", piece, ih, off)
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
	size, sum, verify, d := int64(e.size), e.sum, !e.verified, e.file
	c.touchLocked(e)
	if off >= size {
		c.mu.Unlock()
		return 0, io.EOF
	}
	// Eviction waits for readers before it punches the slot, so what we
	// read is this piece's bytes even if it is evicted meanwhile.
	e.readers++
	c.mu.Unlock()

	n, bad, err := c.readPiece(e, d, size, sum, verify, p, off)

	c.mu.Lock()
	e.readers--
	if e.readers == 0 && e.state == stateEvicting {
		c.cond.Broadcast()
	}
	if verify && bad == "" && err == nil && e.state == statePresent && e.sum == sum {
		e.verified = true
	}
	c.mu.Unlock()
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
