package cache

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// The pager goroutine, owned by the Cache like the maintenance goroutine,
// manages what badger's memory-mapped value log costs the process:
//
//   - writeback: it starts the kernel writing the current value-log file as
//     pieces arrive (sync_file_range, which does not wait). Badger writes
//     values through mmap and, when a value-log file is full, msyncs all of
//     it while holding the file's lock; without early writeback that msync
//     writes a whole file at once, stalling every Put and every read of that
//     file for as long as the disk needs (about half a second for 128 MiB).
//   - preallocation: badger creates each value-log file sparse, so every
//     first store to one of its pages faults into the file system to
//     allocate a block, page by page; that made Put three times slower than
//     a plain write. When a new value-log file appears the pager allocates
//     it whole (fallocate, which never changes existing data); badger
//     truncates the file to its real length when it closes it, and Open
//     does after a crash.
//   - sweep: every page of a mapped file that the process touches stays in
//     its page tables and counts in its RSS (as RssFile) until the kernel
//     reclaims it, so reading or writing tens of gigabytes would show as
//     gigabytes of RSS. (A read fault maps more than the page read: the
//     fault-around window, or a whole large folio of the page cache, up to
//     a megabyte for a 4 KiB read on a recent kernel.) Once the pieces read
//     or written since the last sweep add up to twice Options.KeepMapped,
//     the pager drops the mappings (madvise MADV_DONTNEED) of all but the
//     most recently used KeepMapped bytes of them, at most every sweepGap,
//     and of all of them after sweepIdle without activity. The data stays
//     in the page cache: the next read of such a piece costs a few minor
//     page faults, not a disk read, but that is measurable: random re-reads
//     of a working set larger than KeepMapped run at about two thirds of
//     the speed they have with KeepMapped < 0 (see the benchmarks).

// DefaultKeepMapped is used when Options.KeepMapped is 0.
const DefaultKeepMapped int64 = 32 << 20

const (
	writebackBytes = 4 << 20 // written bytes between writebacks
	// sweepGap bounds the sweeping cost when many pieces are read a little
	// (random small reads): at most 1/sweepGap sweeps a second.
	sweepGap = 50 * time.Millisecond
	// sweepIdle sweeps what is left once activity stops.
	sweepIdle = 2 * time.Second
)

var pageSize = os.Getpagesize()

// markMappedLocked lists e for the next sweep and reports whether the pager
// should be woken.
func (c *Cache) markMappedLocked(e *entry) bool {
	if e.mapped || c.keepMapped < 0 {
		return false
	}
	e.mapped = true
	c.mapped = append(c.mapped, e)
	c.listed += int64(e.size)
	return c.listed >= 2*c.keepMapped
}

// kickPager wakes the pager without blocking.
func (c *Cache) kickPager() {
	select {
	case c.pageKick <- struct{}{}:
	default:
	}
}

// noteWritten counts bytes put and wakes the pager when a writeback is due.
func (c *Cache) noteWritten(n int64) {
	if c.written.Add(n) >= writebackBytes {
		c.kickPager()
	}
}

func (c *Cache) pager() {
	defer c.done.Done()
	var f *os.File // the value-log file last written back
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	idle := time.NewTicker(sweepIdle)
	defer idle.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-idle.C:
			c.sweep(0)
			continue
		case <-c.pageKick:
		}
		if c.written.Load() >= writebackBytes {
			c.written.Store(0)
			f = writeback(c.dir, f, c.vlogSize)
		}
		c.mu.Lock()
		due := c.listed >= 2*c.keepMapped || c.opening
		c.opening = false
		c.mu.Unlock()
		if due {
			c.sweep(c.keepMapped)
			select {
			case <-c.stop:
				return
			case <-time.After(sweepGap):
			}
		}
	}
}

// writeback starts writeback of the newest value-log file, reusing f if it
// is that file, and returns the file it used. A file it has not seen before
// it first preallocates (size bytes).
func writeback(dir string, f *os.File, size int64) *os.File {
	name := newestValueLog(dir)
	if name == "" {
		return f
	}
	if f == nil || f.Name() != name {
		if f != nil {
			f.Close()
		}
		var err error
		if f, err = os.OpenFile(name, os.O_RDWR, 0); err != nil {
			return nil
		}
		// Not supported everywhere; it only saves time.
		_ = unix.Fallocate(int(f.Fd()), 0, 0, size)
	}
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	return f
}

// newestValueLog returns the path of the value-log file with the highest
// number, the one badger is writing.
func newestValueLog(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	best, bestN := "", -1
	for _, e := range ents {
		num, ok := strings.CutSuffix(e.Name(), ".vlog")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n > bestN {
			best, bestN = e.Name(), n
		}
	}
	if best == "" {
		return ""
	}
	return filepath.Join(dir, best)
}

// sweep drops the page mappings of the pieces listed since the last sweep,
// but for the most recently used keep bytes of them. It runs on the pager
// goroutine, which Close stops before closing db.
func (c *Cache) sweep(keep int64) {
	c.mu.Lock()
	list := c.mapped
	slices.SortFunc(list, func(a, b *entry) int { return cmp.Compare(b.seq, a.seq) })
	var kept []*entry
	var keptBytes int64
	keys := make([][]byte, 0, len(list))
	for _, e := range list {
		switch {
		case e.state != statePresent:
			e.mapped = false
		case keptBytes+int64(e.size) <= keep:
			kept = append(kept, e)
			keptBytes += int64(e.size)
		default:
			e.mapped = false
			keys = append(keys, pieceKeyOf(kindPiece, e.ih(), e.piece))
		}
	}
	c.mapped, c.listed = kept, keptBytes
	c.mu.Unlock()
	for _, k := range keys {
		if c.stopping() {
			return
		}
		_ = c.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(k)
			if err != nil {
				return nil // evicted meanwhile
			}
			return item.Value(func(v []byte) error {
				dropPages(v)
				return nil
			})
		})
	}
}

// dropPages unmaps the pages holding v, a value handed out by badger, so
// they stop counting in the process's RSS.
//
// It must only be called inside item.Value's callback: badger holds the
// value-log file's lock then, so the mapping cannot move or vanish under us.
// It relies on values of valueThreshold bytes or more living in the
// memory-mapped value log (MAP_SHARED, see TestValuesAreMapped): a smaller
// value is a heap copy and must not be touched, since MADV_DONTNEED on
// private memory zeroes it. On a shared file mapping MADV_DONTNEED only drops
// page-table entries: dirty pages stay dirty in the page cache and reach the
// file, and the next access maps the same data again. The partial pages at
// both ends (shared with neighbouring values) are dropped too; the mapping
// always covers them, as it spans whole pages of the file.
func dropPages(v []byte) {
	if len(v) < valueThreshold {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	ps := uintptr(pageSize)
	// Reaching v made badger decode the entry header and key just before
	// it (at least entryPrefix bytes, all inside the mapping), faulting in
	// that page too.
	first := (start - entryPrefix) &^ (ps - 1)
	last := (start + uintptr(len(v)) + ps - 1) &^ (ps - 1)
	_ = madvise(first, last-first, unix.MADV_DONTNEED)
}

// entryPrefix is a lower bound on the bytes of a piece's value-log entry that
// precede its value: a header of at least 5 bytes and the 33-byte key
// (25 bytes and badger's 8-byte version).
const entryPrefix = 5 + pieceKeyLen + 8

func madvise(addr, length uintptr, advice int) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, length, uintptr(advice))
	if errno != 0 {
		return errno
	}
	return nil
}
