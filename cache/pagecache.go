package cache

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Page cache: a piece written into its piece file stays in the page cache,
// and a reader through the mount puts its bytes into the page cache a
// second time, the mount's (its files open with FOPEN_KEEP_CACHE): every
// streamed byte took two pages. So written pieces are handed to writeback
// every passEvery bytes (sync_file_range, which does not wait for the
// disk), and once a piece's reader has it (Consumed) and dropAfter newer
// bytes were written, by when its writeback is done, its pages are dropped
// (fadvise DONTNEED). A later read of it (a peer's request, or a reader
// after the mount's copy went) reads the disk. Pieces nobody reads are left
// to the kernel, as are pages still dirty when dropped. Both calls run on a
// goroutine of their own (pages), as sync_file_range blocks while the
// disk's queue is full: a slow disk never holds back a Put, it only keeps
// more pages cached.
//
// A stream whose download has stopped (the whole file is had, and its
// reader is still on its way) writes nothing more, so no pass would come:
// a piece told Consumed also wakes the goroutine, which a second later, if
// less than passEvery was written meanwhile, writes back and drops every
// consumed piece still tracked (idle).
//
// On a VM whose free memory goes back to the host, this is also what keeps
// a stream's writes fast: the next pieces' writes reuse the pages just
// dropped instead of faulting in memory the host took back
// (docs/benchmarks.md, the cold read).
const (
	// dropAfter is how many newer bytes a consumed piece waits for.
	dropAfter = 8 << 20
	// forgetAfter bounds the pieces tracked: one older than this many
	// newer bytes is left to the kernel, consumed or not.
	forgetAfter = 256 << 20
	// passEvery is how many bytes are written between two passes over the
	// tracked pieces.
	passEvery = 2 << 20
	// pageJobs is how many calls may wait for the goroutine; more are
	// skipped.
	pageJobs = 256
	// settle is how long after a Consumed the goroutine looks whether the
	// writes have stopped.
	settle = time.Second
	// waitJobMax bounds a call that waits for writeback, so that Close,
	// which looks between calls, never waits for much of a slow disk.
	waitJobMax = 8 << 20
)

// freshPiece is a written piece whose pages may still be cached.
type freshPiece struct {
	e    *entry
	slot pageJob // its range of its piece file (the file kept: e.file goes with an eviction)
	end  int64   // writes.total once it was written
}

// pageJob is a call for the pages goroutine: start the writeback of a
// range, or drop its pages (after waiting for their writeback, if wait).
type pageJob struct {
	d    *dataFile
	off  int64
	n    int64
	drop bool
	wait bool
}

// writes tracks the fresh pieces, in the order they were written.
type writes struct {
	jobs     chan pageJob  // to the pages goroutine; made by Open
	consumed chan struct{} // cap 1: a piece was told Consumed; made by Open

	mu     sync.Mutex
	total  int64 // bytes written since Open
	nextAt int64 // total at which the next pass runs
	fresh  []freshPiece
	synced int   // fresh[:synced] had their writeback started
	mark   int64 // total when the goroutine last looked for idle writes
}

// written notes e's piece, just written at off. Every passEvery bytes it
// queues the writeback of the pieces written since the last pass and the
// dropping of the pages of the consumed pieces written dropAfter before,
// as few calls as the pieces' ranges allow (a torrent's pieces read in
// order lie one after the other in its piece file).
func (w *writes) written(e *entry, off, n int64) {
	w.mu.Lock()
	w.total += n
	w.fresh = append(w.fresh, freshPiece{e: e, slot: pageJob{d: e.file, off: off, n: n}, end: w.total})
	if w.total < w.nextAt {
		w.mu.Unlock()
		return
	}
	w.nextAt = w.total + passEvery
	var jobs []pageJob
	for _, p := range w.fresh[w.synced:] {
		jobs = addJob(jobs, p.slot)
	}
	keep := w.fresh[:0]
	for i, p := range w.fresh {
		newer := w.total - p.end
		if newer < dropAfter {
			keep = append(keep, w.fresh[i:]...)
			break
		}
		switch {
		case p.e.consumed.Load():
			drop := p.slot
			drop.drop = true
			jobs = addJob(jobs, drop)
		case newer < forgetAfter:
			keep = append(keep, p)
		}
	}
	clear(w.fresh[len(keep):])
	w.fresh, w.synced = keep, len(keep)
	w.mu.Unlock()
	for _, j := range jobs {
		w.send(j)
	}
}

// addJob appends j to jobs, or grows the last job by it if j continues it
// (a call that waits, up to waitJobMax).
func addJob(jobs []pageJob, j pageJob) []pageJob {
	if k := len(jobs) - 1; k >= 0 && jobs[k].d == j.d && jobs[k].drop == j.drop && jobs[k].wait == j.wait && jobs[k].off+jobs[k].n == j.off &&
		(!j.wait || jobs[k].n+j.n <= waitJobMax) {
		jobs[k].n += j.n
		return jobs
	}
	return append(jobs, j)
}

// send queues a job unless the queue is full.
func (w *writes) send(j pageJob) {
	select {
	case w.jobs <- j:
	default:
	}
}

// idle runs settle after a Consumed: if less than passEvery was written
// since the last look, the writes have stopped and no pass will drop the
// consumed pieces tracked, so it returns the calls that do; otherwise it
// reports whether consumed pieces are tracked, to look again later.
func (w *writes) idle() (jobs []pageJob, again bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	flowing := w.total-w.mark >= passEvery
	w.mark = w.total
	if flowing {
		for _, p := range w.fresh {
			if p.e.consumed.Load() {
				return nil, true
			}
		}
		return nil, false
	}
	keep, synced := w.fresh[:0], 0
	for i, p := range w.fresh {
		if p.e.consumed.Load() {
			drop := p.slot
			drop.drop, drop.wait = true, true
			jobs = addJob(jobs, drop)
			continue
		}
		if i < w.synced {
			synced++
		}
		keep = append(keep, p)
	}
	clear(w.fresh[len(keep):])
	w.fresh, w.synced = keep, synced
	return jobs, false
}

// pages runs the page jobs until the cache closes, and looks for idle
// writes settle after a piece was told Consumed.
func (c *Cache) pages() {
	defer c.done.Done()
	look := time.NewTimer(settle)
	look.Stop()
	armed := false
	for {
		select {
		case j := <-c.writes.jobs:
			j.d.pageCall(j)
		case <-c.writes.consumed:
			if !armed {
				c.writes.mu.Lock()
				c.writes.mark = c.writes.total
				c.writes.mu.Unlock()
				look.Reset(settle)
				armed = true
			}
		case <-look.C:
			jobs, again := c.writes.idle()
			for _, j := range jobs {
				select {
				case <-c.stop:
					return
				default:
				}
				j.d.pageCall(j)
			}
			if armed = again; armed {
				look.Reset(settle)
			}
		case <-c.stop:
			look.Stop()
			return
		}
	}
}

// pageCall starts the writeback of j's range of the file, or drops its
// cached pages, if the file is open. Its descriptor cannot be closed (and
// its number reused) while Control runs.
func (d *dataFile) pageCall(j pageJob) {
	f := d.f.Load()
	if f == nil {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		switch {
		case j.drop && j.wait:
			// Dirty pages and pages under writeback are not dropped.
			_ = unix.SyncFileRange(int(fd), j.off, j.n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			_ = unix.Fadvise(int(fd), j.off, j.n, unix.FADV_DONTNEED)
		case j.drop:
			_ = unix.Fadvise(int(fd), j.off, j.n, unix.FADV_DONTNEED)
		default:
			_ = unix.SyncFileRange(int(fd), j.off, j.n, unix.SYNC_FILE_RANGE_WRITE)
		}
	})
}

// Consumed tells the cache that a reader has read the piece to its end and
// keeps its own copy: its pages in the page cache may go (see above).
// Nothing happens for a piece not stored.
func (c *Cache) Consumed(ih InfoHash, piece int) {
	if checkPiece(piece) != nil {
		return
	}
	c.mu.Lock()
	e := c.lookupLocked(ih, uint32(piece))
	told := e != nil && !e.consumed.Swap(true)
	c.mu.Unlock()
	if told {
		select {
		case c.writes.consumed <- struct{}{}:
		default:
		}
	}
}
