package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/picker"
)

// Lock order: r.mu guards only r.closed and is a leaf; nothing is called
// under it (Close queues its operation after releasing it). Reads wait on
// the torrent's waker, their context and the torrent's end, never on a lock
// that the loop holds across peer processing.

// Reader reads one file of a torrent while it downloads. Each read tells the
// picker where the reader is, so the pieces under it become urgent and a
// readahead window follows sequential reading. Reads return only verified
// data and wait for it otherwise.
//
// A Reader is safe for concurrent use (the kernel may issue parallel reads on
// one handle). Close it when done so its window is released.
type Reader struct {
	t          *Torrent
	file       int
	start, end int64 // the file's range in the torrent

	mu     sync.Mutex // guards closed
	closed bool

	// added is closed once the loop has given the reader to the picker;
	// headTail is then what the picker granted it (Picker.HeadTail).
	added    chan struct{}
	headTail []int
}

type readerOpKind int

const (
	opAdd readerOpKind = iota
	opRead
	opDone
	opRemove
)

type readerOp struct {
	kind  readerOpKind
	r     *Reader
	media bool
	off   int64
	n     int
	at    time.Time
}

// NewReader opens file i for reading. media asks the picker for the head and
// tail of the file at once, where containers keep their indexes. Before a
// magnet's info is known it returns an error wrapping ErrNoInfo.
func (t *Torrent) NewReader(i int, media bool) (*Reader, error) {
	if !t.hasInfo.Load() {
		return nil, fmt.Errorf("engine: %s: %w", t.name(), ErrNoInfo)
	}
	if i < 0 || i >= len(t.info.Files) {
		return nil, fmt.Errorf("engine: no file %d in %q", i, t.name())
	}
	f := t.info.Files[i]
	r := &Reader{t: t, file: i, start: f.Offset, end: f.Offset + f.Length, added: make(chan struct{})}
	t.readerQ.push(readerOp{kind: opAdd, r: r, media: media})
	return r, nil
}

// Size is the file's length.
func (r *Reader) Size() int64 { return r.end - r.start }

// ReadAt reads len(p) bytes at off (relative to the file) unless the file
// ends first, waiting for the pieces to be downloaded and verified. It
// returns ctx's error if ctx ends first.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	size := r.end - r.start
	if off < 0 {
		return 0, errors.New("engine: negative offset")
	}
	if off >= size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), size-off))
	buf := p[:n]
	t := r.t
	toff := r.start + off
	if n == 0 {
		return 0, nil
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	t.readerQ.push(readerOp{kind: opRead, r: r, off: toff, n: n, at: time.Now()})
	defer t.readerQ.push(readerOp{kind: opDone, r: r, off: toff, n: n})
	first := int(toff / t.info.PieceLength)
	last := int((toff + int64(n) - 1) / t.info.PieceLength)
	for {
		mem := false
		for piece := first; piece <= last; piece++ {
			inMem, err := t.waitPiece(ctx, piece)
			if err != nil {
				return 0, err
			}
			mem = mem || inMem
		}
		woken := t.waiters.wait()
		var err error
		if mem {
			err = t.readMem(buf, toff)
		} else {
			_, err = t.store.ReadAt(buf, toff)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrNotStored) {
			return 0, err
		}
		// A have-bit without its piece: evicted since we looked, or an
		// eviction the loop has not handled yet. Have the loop check
		// with the store (it clears the bit and fetches the piece again
		// if it is gone) and wait for its answer, as for any piece.
		t.recheck(first, last)
		select {
		case <-woken:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.done:
			return 0, ErrClosed
		}
	}
	t.consumed(first, last, toff+int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ErrNoHeadTail is returned by AwaitHeadTail for a reader that is not
// asking for its file's head and tail.
var ErrNoHeadTail = errors.New("engine: the reader is not asking for its head and tail")

// AwaitHeadTail waits until the pieces under the file's head and tail are
// verified, for a reader opened as media: the picker asks for them at open,
// below any read's pieces. It reads nothing and asks for nothing more (a
// ReadAt makes its pieces urgent), so a program's reads come first. It
// returns ErrNoHeadTail at once if the picker did not grant the reader its
// head and tail (not media, or other readers' heads and tails fill their
// share of the readahead budget), ctx's error if ctx ends first.
func (r *Reader) AwaitHeadTail(ctx context.Context) error {
	t := r.t
	select {
	case <-r.added:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.done:
		return ErrClosed
	}
	if len(r.headTail) == 0 {
		return ErrNoHeadTail
	}
	for _, piece := range r.headTail {
		if _, err := t.waitPiece(ctx, piece); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the reader's window.
func (r *Reader) Close() error {
	r.mu.Lock()
	closed := r.closed
	r.closed = true
	r.mu.Unlock()
	if !closed {
		// Not under r.mu: engine mutexes are never nested. A read that
		// raced with Close may queue its ops after this one; the loop
		// ignores ops of a reader it no longer has.
		r.t.readerQ.push(readerOp{kind: opRemove, r: r})
	}
	return nil
}

// waitPiece blocks until piece is verified and either stored or held in
// memory (inMem: the store refused it until readers release their pins),
// ctx ends (it carries the read's deadline), the torrent stops, or the
// store refuses the piece for good (an error wrapping the store's: ENOSPC
// for no space).
func (t *Torrent) waitPiece(ctx context.Context, piece int) (inMem bool, err error) {
	for {
		if t.HavePiece(piece) {
			return false, nil
		}
		ch := t.waiters.wait()
		if t.HavePiece(piece) {
			return false, nil
		}
		if t.mem.has(piece) {
			return true, nil
		}
		if err := t.refusedErr(piece); err != nil {
			return false, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.done:
			return false, ErrClosed
		}
	}
}

// consumed tells a store that keeps pieces in memory (storage.Consumer)
// that a read ending at end read pieces first..last: those it read to their
// end, the reader has now. A piece read from memory before it was stored
// is told of once it is (markHave).
func (t *Torrent) consumed(first, last int, end int64) {
	c, ok := t.store.(storage.Consumer)
	if !ok {
		return
	}
	for p := first; p <= last; p++ {
		if t.info.PieceOffset(p)+t.info.PieceLen(p) > end {
			break // the read stops inside it
		}
		if t.HavePiece(p) {
			c.Consumed(p)
			continue
		}
		// markHave clears the bit after it sets the have-bit: one of
		// the two sees the other's.
		t.readBits.set(p)
		if t.HavePiece(p) && t.readBits.clear(p) {
			c.Consumed(p)
		}
	}
}

// readMem is the store's ReadAt for a range with pieces held in memory.
func (t *Torrent) readMem(p []byte, off int64) error {
	pl := t.info.PieceLength
	for len(p) > 0 {
		piece := int(off / pl)
		pieceOff := off - int64(piece)*pl
		n := int(min(int64(len(p)), t.info.PieceLen(piece)-pieceOff))
		if !t.mem.copyAt(piece, p[:n], pieceOff) {
			if _, err := t.store.ReadAt(p[:n], off); err != nil {
				return err
			}
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// applyReaderOps feeds queued reader operations to the picker. Loop only.
func (t *Torrent) applyReaderOps() {
	ops := t.readerQ.take()
	now := time.Now()
	for _, op := range ops {
		t.noteReadWait(op)
		switch op.kind {
		case opAdd:
			id := t.picker.AddReader(picker.ReaderOptions{Start: op.r.start, End: op.r.end, Media: op.media}, now)
			t.readers[op.r] = id
			op.r.headTail = t.picker.HeadTail(id)
			close(op.r.added)
		case opRead:
			if id, ok := t.readers[op.r]; ok {
				t.picker.ReaderRead(id, op.off, op.n, op.at)
			}
		case opDone:
			if id, ok := t.readers[op.r]; ok {
				t.picker.ReaderDone(id, op.off, op.n)
			}
		case opRemove:
			if id, ok := t.readers[op.r]; ok {
				t.picker.RemoveReader(id)
				delete(t.readers, op.r)
			}
		}
	}
	if t.picker == nil {
		return
	}
	// A seek or a new urgent read withdraws queued requests: cancel them
	// now, not at the next tick.
	t.sendCancels(t.picker.Cancels())
	for c := range t.conns {
		t.updateInterest(c)
	}
	t.fillAll()
	t.syncPins()
}

// syncPins mirrors the picker's pinned pieces into the store, so the cache
// never evicts what a reader is about to use.
func (t *Torrent) syncPins() {
	if t.picker == nil {
		return
	}
	pinner, ok := t.store.(storage.Pinner)
	if !ok {
		return
	}
	v := t.picker.PinVersion()
	if v == t.pinVersion {
		return // nothing changed since the last sync
	}
	t.pinVersion = v
	now := map[int]bool{}
	for _, p := range t.picker.PinnedPieces() {
		now[p] = true
		if !t.pinned[p] {
			pinner.Pin(p)
		}
	}
	for p := range t.pinned {
		if !now[p] {
			pinner.Unpin(p)
		}
	}
	t.pinned = now
}
