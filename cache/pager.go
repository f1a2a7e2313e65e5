package cache

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// The pager goroutine, owned by the Cache like the maintenance goroutine,
// and the Puts between them manage what badger's memory-mapped value log
// costs the process:
//
//   - writeback (pager): it starts the kernel writing the current value-log
//     file as pieces arrive (sync_file_range, which does not wait). Badger
//     writes values through mmap and, when a value-log file is full, msyncs
//     all of it while holding the file's lock; without early writeback that
//     msync writes a whole file at once, stalling every Put and every read of
//     that file for as long as the disk needs (about half a second for
//     128 MiB).
//   - preallocation and prefill (Puts, and a goroutine of their own; see
//     noteWritten): badger creates each value-log file sparse, so every
//     first store to one of its pages faults into the file system to
//     allocate a block, page by page; that made Put three times slower than
//     a plain write. When a new value-log file appears it is allocated whole
//     (fallocate, which never changes existing data; badger truncates the
//     file to its real length when it closes it, and Open does after a
//     crash) and its page cache filled in large folios (see prefill) a
//     little ahead of the writes (prefillAhead).
//   - sweep (Puts and pager): every page of a mapped file that the process
//     touches stays in its page tables and counts in its RSS (as RssFile)
//     until the kernel reclaims it, so writing tens of gigabytes would show
//     as gigabytes of RSS. (A fault maps more than the page touched: the
//     fault-around window, or a whole large folio of the page cache.) Once
//     the pieces written, or read through the mapping, since the last sweep
//     add up to twice Options.KeepMapped, the Put that wrote the last of
//     them (or the pager, for reads, at most every sweepGap) drops the
//     mappings (madvise MADV_DONTNEED) of all but the most recently used
//     KeepMapped bytes of them, or of whole files when they are many; the
//     pager drops all of them after sweepIdle without activity. The data
//     stays in the page cache. Reads of verified pieces use pread
//     (direct.go) and map nothing.

// DefaultKeepMapped is used when Options.KeepMapped is 0. Small, since
// reads of verified pieces do not go through the mapping: what stays mapped
// is mostly what was just written, and a writer sweeps every 2*KeepMapped
// (a lookup or two, tens of microseconds), so it maps at most about
// 2*KeepMapped.
const DefaultKeepMapped int64 = 2 << 20

const (
	writebackBytes = 4 << 20 // written bytes between writebacks
	// sweepGap bounds the sweeping cost when many pieces are read a little
	// (random small reads): at most 1/sweepGap sweeps a second. Writes
	// sweep themselves (see Put). (20 ms slowed a writer that evicts all
	// the time, TestCrashSIGKILL's, by a third under -race.)
	sweepGap = 50 * time.Millisecond
	// sweepByKeyMax is the most pieces a sweep unmaps one by one.
	sweepByKeyMax = 8
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

const (
	// prefillAhead is how far past what was written into the head file
	// prefill goes, and prefillStep how much it does at a time: the
	// rest of a file is prefilled only as writes come near it. Prefilling
	// a whole file when it started zeroed (and mapped, and unmapped) up
	// to a value-log file (128 MiB) that a download might never write:
	// the file a 256 MiB download started at its very end took a third
	// of the prefill's CPU time, a fifth of the process's. 32 MiB is
	// 100 ms of writing at 300 MB/s.
	prefillAhead = 32 << 20
	prefillStep  = 8 << 20
)

// noteWritten counts bytes put, checks whether badger started a new
// value-log file (one stat; see headLog), prefills the head file ahead of
// the writes, and wakes the pager when a writeback is due. It runs on the
// Put's goroutine so that a new file is prefilled before badger has
// written much of it; a Put that finds another one checking (or a prefill
// running) skips the check.
func (c *Cache) noteWritten(n int64) {
	h := &c.head
	wrote := h.wrote.Add(n)
	if h.mu.TryLock() {
		if h.follow(c.dir, c.vlogSize) {
			// A new file: prefill it from its start, a step ahead of
			// badger; the start of the one before is redone once.
			h.wrote.Store(0)
			wrote = 0
			h.filled, h.prev, h.prevSmall, h.small = 0, h.fid-1, h.small, 0
		}
		if h.f != nil && h.filled < c.vlogSize && wrote+prefillAhead >= h.filled+prefillStep {
			// Prefill on a goroutine of its own, holding the head's
			// lock: in the Put it stalled the engine's writes (streaming
			// from a fast swarm ran 20% slower), and on the pager it
			// started late. Whole chunks, so that the next starts on a
			// page boundary.
			from, to := h.filled, min(c.vlogSize, (wrote+prefillAhead)&^(populateChunk-1))
			h.filled = to
			prev, small := h.prev, h.prevSmall
			h.prev = -1
			c.prefills.Add(1)
			go func() {
				defer c.prefills.Done()
				defer h.mu.Unlock()
				skipped := prefill(h.f, from, to)
				if from == 0 {
					h.small = skipped
				}
				if prev >= 0 {
					refolio(valueLogPath(c.dir, prev), small)
				}
			}()
		} else {
			h.mu.Unlock()
		}
	}
	if c.keepMapped >= 0 {
		c.dropFinished()
	}
	if c.written.Add(n) >= writebackBytes {
		c.kickPager()
	}
}

// dropFinished drops the page mappings of the value-log files older than
// the newest, once for each new file badger starts. Badger finished the
// file before it, and the pages written into it since the last sweep are
// still mapped: with files of 8 MiB, a whole file's worth at the peak,
// beside the file being written and the one GC reads. The sweeps by key
// leave what lies between the pieces they list, and the pager may be late.
// The older files are never remapped, so dropping them whole is cheap.
// Every Put checks, with one stat, whether the file after the newest it
// saw exists: not only the Put that follows the head (see noteWritten),
// which skips while a prefill runs.
func (c *Cache) dropFinished() {
	seen := c.newestSeen.Load()
	if seen > 0 {
		if _, err := os.Stat(valueLogPath(c.dir, int(seen)+1)); err != nil {
			return
		}
	}
	_, head := newestValueLog(c.dir)
	if head <= int(seen) || !c.newestSeen.CompareAndSwap(seen, int64(head)) {
		return
	}
	if seen > 0 {
		c.dropOldMappings()
	}
}

func (c *Cache) pager() {
	defer c.done.Done()
	idle := time.NewTicker(sweepIdle)
	defer idle.Stop()
	var gap <-chan time.Time // non-nil while sweeps wait for sweepGap
	for {
		select {
		case <-c.stop:
			return
		case <-idle.C:
			c.sweepMu.Lock()
			c.sweep(0)
			c.sweepMu.Unlock()
			c.files.invalidate()
			continue
		case <-gap:
			gap = nil
		case <-c.pageKick:
		}
		if c.written.Load() >= writebackBytes && c.head.mu.TryLock() {
			c.written.Store(0)
			c.head.writeback()
			c.head.mu.Unlock()
		}
		c.mu.Lock()
		due := c.listed >= 2*c.keepMapped || c.opening
		c.opening = false
		c.mu.Unlock()
		if due && gap == nil {
			c.sweepMu.Lock()
			c.sweep(c.keepMapped)
			c.sweepMu.Unlock()
			gap = time.After(sweepGap)
		}
	}
}

// headLog is the value-log file badger is writing, as Puts follow it.
type headLog struct {
	// wrote is about how many bytes badger wrote into the head file: the
	// pieces put since a Put saw it start (the entries' headers and the
	// Puts between badger starting it and a Put seeing that are not
	// counted; prefillAhead covers them).
	wrote atomic.Int64

	mu    sync.Mutex // held by follow, writeback, close and a running prefill
	known bool       // fid is set
	fid   int        // the head file's number
	f     *os.File   // the head file, nil when released (see releaseFiles)
	// filled is how far prefill has gone (or was sent) in the head file;
	// prefill continues from there as writes come within prefillAhead.
	// A file found at Open that was not fresh is never prefilled.
	filled int64
	// prev is the file before the head, for refolio once the head's
	// first prefill ran, and prevSmall its small; prev is -1 when done or
	// none.
	prev      int
	prevSmall int64
	// small is how much of the head file was in the page cache (in small
	// folios) when its first prefill ran; refolio redoes it once the file
	// is full.
	small int64
}

// follow switches to the newest value-log file when badger started one. The
// first time it looks the directory over; after that it only checks whether
// the file after the current one exists. A file it sees badger start it
// preallocates (size bytes) and reports, for prefilling; the one it finds at
// first is only preallocated (prefilling it could read it from disk), unless
// it is all but empty.
func (h *headLog) follow(dir string, size int64) (fresh bool) {
	if !h.known {
		name, fid := newestValueLog(dir)
		if name == "" {
			return false
		}
		h.known, h.fid = true, fid
		if !h.open(name) {
			return false
		}
		// A file that holds (almost) nothing yet, as in a new cache, is
		// as good as new: prefilling it reads nothing from the disk.
		var st unix.Stat_t
		fresh := unix.Fstat(int(h.f.Fd()), &st) == nil && st.Blocks*512 <= 16<<20
		if !(unix.Fallocate(int(h.f.Fd()), 0, 0, size) == nil && fresh) {
			h.filled, h.prev = size, -1 // never prefilled
			return false
		}
		return true
	}
	next := valueLogPath(dir, h.fid+1)
	if _, err := os.Stat(next); err != nil {
		if h.f == nil && !h.open(valueLogPath(dir, h.fid)) {
			h.known = false // gone: look again next time
		}
		return false
	}
	h.fid++
	if !h.open(next) || unix.Fallocate(int(h.f.Fd()), 0, 0, size) != nil {
		h.filled, h.prev = size, -1 // never prefilled
		return false
	}
	return true
}

// open makes name the head file.
func (h *headLog) open(name string) bool {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	h.close()
	h.f = f
	return true
}

// writeback starts the kernel writing the head file's dirty pages, without
// waiting for it.
func (h *headLog) writeback() {
	if h.f != nil {
		_ = unix.SyncFileRange(int(h.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
}

// releaseFiles closes our descriptors of value-log files (direct reads' and
// the head's), after value-log GC deleted one: an open descriptor would keep
// a deleted file's disk space. They are reopened on demand.
func (c *Cache) releaseFiles() {
	c.files.invalidate()
	c.head.mu.Lock()
	c.head.close()
	c.head.mu.Unlock()
}

func (h *headLog) close() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// prefill puts bytes [from, to) of a new, preallocated value-log file in the
// page cache before badger writes them. Its blocks are allocated but unwritten, so
// this costs no disk I/O: the kernel hands out zeroed pages. The point is
// the size of those pages. Badger's write faults add pages to the page cache
// as the kernel's mmap readahead sizes them: lone 4 KiB folios around the
// first fault, then folios of tens of KiB, where a plain file written with
// write(2) sits in 1 MiB folios; every later pread of a piece (direct.go)
// walks them, and walking many small ones made random piece reads a third
// slower than reads of the plain file (BenchmarkReadPiece). Faulting the
// file in through a mapping of our own marked MADV_HUGEPAGE makes the kernel
// read it ahead in 2 MiB folios (where transparent huge pages are not
// disabled; elsewhere in its usual readahead sizes). Pages badger already
// wrote are left as they are. from and to are multiples of populateChunk
// (but to may be the file's size).
//
// It returns how much of [from, to) was cached before it ran (and is left
// in small folios), for refolio.
func prefill(f *os.File, from, to int64) int64 {
	if to <= from {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), from, int(to-from), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0
	}
	defer unix.Munmap(m)
	if unix.Madvise(m, unix.MADV_HUGEPAGE) != nil {
		return 0
	}
	// Start past what is cached already: faulting into it would hit its
	// readahead mark and continue in its small sizes.
	vec := make([]byte, (len(m)+pageSize-1)/pageSize)
	if mincore(m, vec) != nil {
		return 0
	}
	start := len(m)
	for off := 0; off < len(m); off += populateChunk {
		pages := vec[off/pageSize : min(off+populateChunk, len(m))/pageSize]
		if !slices.ContainsFunc(pages, func(v byte) bool { return v&1 != 0 }) {
			start = off
			break
		}
	}
	populate(m[start:])
	return int64(start)
}

// populateChunk is a huge page: the unit prefill and refolio fault in.
const populateChunk = 2 << 20

// populate faults m in through its (MADV_HUGEPAGE) mapping a 2 MiB chunk at
// a time, unmapping each at once: the populated pages would otherwise count
// in the process's RSS (a whole file's worth of peak RSS) until the munmap.
func populate(m []byte) {
	for off := 0; off < len(m); off += populateChunk {
		c := m[off:min(off+populateChunk, len(m))]
		if unix.Madvise(c, unix.MADV_POPULATE_READ) != nil {
			return
		}
		_ = unix.Madvise(c, unix.MADV_DONTNEED)
	}
}

// refolio redoes, in large folios, the start of a full value-log file that
// was in the page cache in small ones when it was prefilled (small bytes):
// what the kernel read around badger's first write fault in it, as much as
// the disk's readahead (read_ahead_kb: 128 KiB by default, 8 MiB on some
// virtual disks, where it made random piece reads 10-15% slower). It waits
// for those pages to be written back, drops them from the page cache (pages
// still mapped or dirty stay) and reads them back from the disk through a
// MADV_HUGEPAGE mapping: a read of small bytes per value-log file.
func refolio(name string, small int64) {
	if small <= 0 {
		return
	}
	f, err := os.Open(name)
	if err != nil {
		return // collected meanwhile, or never existed
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < small {
		return
	}
	fd := int(f.Fd())
	if unix.SyncFileRange(fd, 0, small, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER) != nil ||
		unix.Fadvise(fd, 0, small, unix.FADV_DONTNEED) != nil {
		return
	}
	m, err := unix.Mmap(fd, 0, int(small), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return
	}
	defer unix.Munmap(m)
	if unix.Madvise(m, unix.MADV_HUGEPAGE) == nil {
		populate(m)
	}
}

// valueLogPath is the path of value-log file number fid, as badger names it.
func valueLogPath(dir string, fid int) string {
	return filepath.Join(dir, fmt.Sprintf("%06d.vlog", fid))
}

// newestValueLog returns the path and number of the value-log file with the
// highest number, the one badger is writing.
func newestValueLog(dir string) (string, int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", -1
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
		return "", -1
	}
	return filepath.Join(dir, best), bestN
}

// sweep drops the page mappings of the pieces listed since the last sweep,
// but for the most recently used keep bytes of them. The caller holds
// sweepMu, and db is open: it runs on the pager goroutine, which Close
// stops before closing db, or in a Put.
func (c *Cache) sweep(keep int64) {
	c.mu.Lock()
	list := c.mapped
	slices.SortFunc(list, func(a, b *entry) int { return cmp.Compare(b.seq, a.seq) })
	var kept []*entry
	var keptBytes int64
	keys := make([][]byte, 0, len(list))
	var newest []byte // the most recent present piece listed
	gone := false     // a listed piece was deleted: its pages cannot be found by key
	for _, e := range list {
		if e.state == statePresent && newest == nil {
			newest = pieceKeyOf(kindPiece, e.ih(), e.piece)
		}
		switch {
		case e.state != statePresent:
			e.mapped = false
			gone = true
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
	if gone || len(keys) > sweepByKeyMax {
		// Pieces evicted since they were written (a cache smaller than
		// what streams through it) left their pages mapped, and cannot be
		// found by key; many pieces cost a lookup each. Drop whole files
		// instead (gcsweep.go): the older ones, and the one badger
		// writes. That unmaps the pieces
		// kept too; reads of verified pieces do not use the mapping
		// (direct.go), so little is lost.
		c.dropOldMappings()
		// Found through the first of a few recent pieces it holds.
		var in [][]byte
		if newest != nil {
			in = append(in, newest)
		}
		in = append(in, c.recentKeys(4)...)
		in = append(in, keys[:min(len(keys), sweepByKeyMax)]...)
		if _, head := newestValueLog(c.dir); head >= 0 {
			c.dropFileOf(head, in)
		}
		return
	}
	maps := valueLogMaps{dir: c.mapsDir}
	for _, k := range keys {
		if c.stopping() {
			return
		}
		_ = c.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(k)
			if err != nil {
				return nil // evicted meanwhile
			}
			fid := -1
			if vp, ok := valuePointerOf(item); ok {
				fid = int(vp.fid)
			}
			return item.Value(func(v []byte) error {
				if len(v) >= valueThreshold && !dropPages(v, fid, &maps) {
					if c.pagesRefused.Add(1) == 1 {
						c.logf("cache: a piece value at %#x (%d bytes) lies outside the value-log mappings; not unmapping it (badger changed how it hands out values?)",
							uintptr(unsafe.Pointer(unsafe.SliceData(v))), len(v))
					}
				}
				return nil
			})
		})
	}
}

// dropPages unmaps the pages holding v, a value handed out by badger from
// value-log file fid (-1 if unknown), so they stop counting in the process's
// RSS, and reports whether it did.
//
// It must only be called inside item.Value's callback: badger holds the
// value-log file's lock then, so the mapping cannot move or vanish under us.
// MADV_DONTNEED is harmless only on a shared file mapping: it drops
// page-table entries, dirty pages stay dirty in the page cache and reach the
// file, and the next access maps the same data again. On private memory
// (the Go heap, where badger's memtables keep inline values, or any copy of
// a value) it zeroes the pages. Values of valueThreshold bytes or more live in
// the value log (TestValuesAreMapped), but dropPages does not take that on
// trust: it advises only a range that lies wholly inside a shared mapping of
// one of this cache's value-log files (file fid when known), as
// /proc/self/maps lists them (see valueLogMaps). The partial pages at both
// ends (shared with neighbouring values) are dropped too; the mapping always
// covers them, as it spans whole pages of the file.
func dropPages(v []byte, fid int, maps *valueLogMaps) bool {
	if len(v) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	ps := uintptr(pageSize)
	// Reaching v made badger decode the entry header and key just before
	// it (at least entryPrefix bytes, all inside the mapping), faulting in
	// that page too.
	first := (start - entryPrefix) &^ (ps - 1)
	last := (start + uintptr(len(v)) + ps - 1) &^ (ps - 1)
	if !maps.covers(first, last, fid) {
		return false
	}
	_ = madvise(first, last-first, unix.MADV_DONTNEED)
	return true
}

// valueLogMaps are the address ranges of one cache's value-log mappings,
// read from /proc/self/maps when first needed and read again, once, when a
// range is not found (badger maps each new value-log file as it starts it).
// One sweep uses one valueLogMaps: its ranges are not kept past the sweep,
// since a file that value-log GC deleted is unmapped, and its addresses may
// then be reused by anything, the Go heap included.
type valueLogMaps struct {
	dir      string // the data directory as the kernel names it (no symlinks)
	spans    []mapSpan
	loaded   bool
	reloaded bool
}

// mapSpan is one shared mapping of value-log file fid, [lo, hi).
type mapSpan struct {
	lo, hi uintptr
	fid    int
}

// covers reports whether [lo, hi) lies inside one shared mapping of a
// value-log file of m.dir, and of file fid unless fid < 0.
func (m *valueLogMaps) covers(lo, hi uintptr, fid int) bool {
	if !m.loaded {
		m.spans, m.loaded = readValueLogMaps(m.dir), true
	}
	if m.find(lo, hi, fid) {
		return true
	}
	if m.reloaded {
		return false
	}
	m.spans, m.reloaded = readValueLogMaps(m.dir), true
	return m.find(lo, hi, fid)
}

func (m *valueLogMaps) find(lo, hi uintptr, fid int) bool {
	for _, s := range m.spans {
		if lo >= s.lo && hi <= s.hi && lo < hi && (fid < 0 || fid == s.fid) {
			return true
		}
	}
	return false
}

// readValueLogMaps lists the shared mappings of dir's value-log files from
// /proc/self/maps; nil if it cannot be read (nothing is then unmapped).
func readValueLogMaps(dir string) []mapSpan {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil
	}
	return parseValueLogMaps(string(b), dir)
}

// parseValueLogMaps picks the shared mappings of dir's value-log files out
// of the text of /proc/PID/maps: "lo-hi perms offset dev inode path".
func parseValueLogMaps(maps, dir string) []mapSpan {
	var spans []mapSpan
	for line := range strings.Lines(maps) {
		line = strings.TrimSuffix(line, "\n")
		slash := strings.IndexByte(line, '/') // the path; no field before it has one
		f := strings.Fields(line)
		if slash < 0 || len(f) < 6 || len(f[1]) != 4 || f[1][3] != 's' {
			continue
		}
		path := strings.TrimSuffix(line[slash:], " (deleted)")
		if filepath.Dir(path) != dir {
			continue
		}
		num, ok := strings.CutSuffix(filepath.Base(path), ".vlog")
		fid, err := strconv.Atoi(num)
		if !ok || err != nil || fid < 0 {
			continue
		}
		los, his, _ := strings.Cut(f[0], "-")
		lo, err1 := strconv.ParseUint(los, 16, 64)
		hi, err2 := strconv.ParseUint(his, 16, 64)
		if err1 != nil || err2 != nil || lo >= hi {
			continue
		}
		spans = append(spans, mapSpan{lo: uintptr(lo), hi: uintptr(hi), fid: fid})
	}
	return spans
}

// kernelPath is dir as /proc/self/maps names what is under it: absolute,
// symbolic links resolved.
func kernelPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// entryPrefix is a lower bound on the bytes of a piece's value-log entry that
// precede its value: a header of at least 5 bytes and the 33-byte key
// (25 bytes and badger's 8-byte version).
const entryPrefix = 5 + pieceKeyLen + 8

func mincore(m, vec []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(m))),
		uintptr(len(m)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		return errno
	}
	return nil
}

func madvise(addr, length uintptr, advice int) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, length, uintptr(advice))
	if errno != 0 {
		return errno
	}
	return nil
}
