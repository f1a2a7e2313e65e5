package engine

import (
	"net/netip"
	"sync"
)

// What a torrent's loop shares with other goroutines (readers, the accept
// path, the store's eviction hook, callers of Stats), each behind its own
// mutex in a small type here, so that every mutex sits beside what it
// guards.
//
// Lock order: each mutex in this file is a leaf. It is held for a few
// memory operations only: never while another lock is taken, never across
// I/O, a channel send (the pokes below are sent after unlocking, and never
// block), or a call into another package.

// waker lets readers wait for the loop's news: a piece verified, refused
// or found gone. wait returns a channel that the next wakeAll closes. The
// zero value is ready.
type waker struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func (w *waker) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// wakeAll wakes every reader waiting, and reports whether one may have
// been (a wait since the last wakeAll).
func (w *waker) wakeAll() bool {
	w.mu.Lock()
	woke := w.ch != nil
	if woke {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
	return woke
}

// banList is the addresses banned for bad data: written by the loop, read
// by the accept path too. The zero value is ready.
type banList struct {
	mu    sync.Mutex // guards addrs
	addrs map[netip.Addr]bool
}

// add bans a and reports whether it was new.
func (b *banList) add(a netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.addrs[a] {
		return false
	}
	if b.addrs == nil {
		b.addrs = make(map[netip.Addr]bool)
	}
	b.addrs[a] = true
	return true
}

func (b *banList) has(a netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addrs[a]
}

func (b *banList) list() []netip.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]netip.Addr, 0, len(b.addrs))
	for a := range b.addrs {
		out = append(out, a)
	}
	return out
}

// statsCell holds the loop's latest Stats snapshot.
type statsCell struct {
	mu sync.Mutex // guards s
	s  Stats
}

func (c *statsCell) store(s Stats) {
	c.mu.Lock()
	c.s = s
	c.mu.Unlock()
}

func (c *statsCell) load() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}

// readerQueue carries readers' operations to the loop without ever
// blocking a reader on it: push appends and pokes, the loop takes the lot.
type readerQueue struct {
	mu   sync.Mutex // guards ops
	ops  []readerOp
	poke chan struct{} // cap 1: ops has work for the loop
}

func (q *readerQueue) push(op readerOp) {
	q.mu.Lock()
	q.ops = append(q.ops, op)
	q.mu.Unlock()
	select {
	case q.poke <- struct{}{}:
	default:
	}
}

func (q *readerQueue) take() []readerOp {
	q.mu.Lock()
	defer q.mu.Unlock()
	ops := q.ops
	q.ops = nil
	return ops
}

// evictQueue carries pieces to re-check with the store to the loop: those
// the store evicted (its hook runs on any goroutine) and those a reader
// found missing. Each piece is queued once until the loop takes it.
type evictQueue struct {
	mu   sync.Mutex // guards set and list
	set  bitSet     // the pieces in list; sized with the info
	list []int
	poke chan struct{} // cap 1: list has work for the loop
}

func (q *evictQueue) add(first, last int) {
	q.mu.Lock()
	for p := first; p <= last; p++ {
		if q.set.set(p) {
			q.list = append(q.list, p)
		}
	}
	q.mu.Unlock()
	select {
	case q.poke <- struct{}{}:
	default:
	}
}

func (q *evictQueue) take() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.list
	q.list = nil
	for _, p := range list {
		q.set.clear(p)
	}
	return list
}

// storeErrs is why the store refuses pieces, for Stats and for reads of
// refused pieces.
type storeErrs struct {
	mu      sync.Mutex // guards err and refusal
	err     error      // why the store refuses pieces; nil while it takes them
	refusal error      // the latest refusal, kept after the store works again
}

func (s *storeErrs) refused(err error) {
	s.mu.Lock()
	s.err, s.refusal = err, err
	s.mu.Unlock()
}

// worked clears the current error and returns it.
func (s *storeErrs) worked() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.err
	s.err = nil
	return was
}

func (s *storeErrs) current() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *storeErrs) latest() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusal
}

// memPieces are verified pieces the store refused, held in memory for
// their readers until it takes them (torrent_store.go). The loop puts and
// forgets; readers test and copy. The zero value is ready.
type memPieces struct {
	mu sync.Mutex // guards m; held while a reader copies from a piece
	m  map[int][]byte
}

func (m *memPieces) put(p int, b []byte) {
	m.mu.Lock()
	if m.m == nil {
		m.m = make(map[int][]byte)
	}
	m.m[p] = b
	m.mu.Unlock()
}

// forget withdraws a piece's bytes from readers, before its buffer is
// reused.
func (m *memPieces) forget(p int) {
	m.mu.Lock()
	delete(m.m, p)
	m.mu.Unlock()
}

func (m *memPieces) has(p int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[p] != nil
}

// copyAt copies bytes of piece p at off into dst; false if the piece is
// not held or too short.
func (m *memPieces) copyAt(p int, dst []byte, off int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.m[p]
	if b == nil || off+int64(len(dst)) > int64(len(b)) {
		return false
	}
	copy(dst, b[off:])
	return true
}
