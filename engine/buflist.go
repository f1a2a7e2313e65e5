package engine

import (
	"os"
	"sync"
)

// bufList keeps returned buffers for reuse, by length, up to max bytes in
// all. The piece and block buffers a download cycles through are large and
// many (a fast swarm takes a 1 MiB piece buffer every few milliseconds):
// a sync.Pool is emptied by every second garbage collection, and a mount
// collects often (it runs under a soft memory limit), so most of them were
// allocated afresh, and the garbage they left made the collector run
// more often still. A bufList outlives collections; what it keeps is
// bounded (max), and besides what warm readies it holds only buffers that
// were in use at the same time, so it hardly raises the peak. Safe for
// concurrent use.
type bufList struct {
	max int64 // most bytes kept; read-only after construction

	mu    sync.Mutex // guards the fields below
	free  map[int][][]byte
	bytes int64
}

func newBufList(max int64) *bufList {
	return &bufList{max: max, free: map[int][][]byte{}}
}

// get returns a buffer of n bytes, a kept one when there is one (its bytes
// are not cleared: the callers overwrite them all).
func (l *bufList) get(n int) []byte {
	l.mu.Lock()
	if s := l.free[n]; len(s) > 0 {
		b := s[len(s)-1]
		s[len(s)-1] = nil
		l.free[n] = s[:len(s)-1]
		l.bytes -= int64(n)
		l.mu.Unlock()
		return b
	}
	l.mu.Unlock()
	return make([]byte, n)
}

// put keeps b for a later get of its length. Past max it makes room by
// letting go of buffers of other lengths (those of a torrent that finished,
// or a last piece), then, if that is not enough, of b: the collector has
// them.
func (l *bufList) put(b []byte) {
	n := len(b)
	if n == 0 || int64(n) > l.max {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for m, s := range l.free {
		if l.bytes+int64(n) <= l.max {
			break
		}
		if m != n {
			l.bytes -= int64(m * len(s))
			delete(l.free, m)
		}
	}
	if l.bytes+int64(n) > l.max {
		return
	}
	l.free[n] = append(l.free[n], b)
	l.bytes += int64(n)
}

// kept is how many bytes l keeps now.
func (l *bufList) kept() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// warm makes l keep at least count buffers of n bytes, allocating the
// missing ones and writing to each of their pages. A process's first
// touch of fresh memory costs a page fault per page (on some virtual
// machines several µs each: 3-13 ms per MiB measured here), which the
// first piece of a new torrent paid while its reader waited; populate
// faults them in with one system call and has the kernel write them once
// (its own first access to a page costs as much again there), and the
// writes here pay the user's first access.
func (l *bufList) warm(n, count int) {
	l.mu.Lock()
	missing := count - len(l.free[n])
	l.mu.Unlock()
	page := os.Getpagesize()
	for range missing {
		b := make([]byte, n)
		populate(b)
		// The user's first access, and what populate could not do (a
		// kernel before 5.14, the pages at the ends): a write to each
		// page.
		for i := 0; i < n; i += page {
			b[i] = 0
		}
		l.put(b)
	}
}

// count is how many buffers of n bytes l keeps now.
func (l *bufList) count(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.free[n])
}
