package cache

import (
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// Value-log GC reads the file it rewrites whole, through badger's mapping
// of it: every page of it then counts in the process's RSS until the file
// is deleted at the end of the rewrite. That was a value-log file's worth
// of peak RSS (64-128 MiB) each time a cache that evicts collected, on top
// of everything else. So while runValueLogGC runs, gcSweeper drops the page
// mappings of all value-log files older than the one badger writes, every
// gcSweepEvery; the pages stay in the page cache and GC faults them in
// again as it reads on, a few MiB at a time.
//
// Why that is safe: MADV_DONTNEED on a shared file mapping only drops page
// table entries (see dropPages); the danger is a range that is no longer
// that mapping. A value-log file older than the newest one on disk is
// never remapped (badger truncates a file when it is done writing it,
// before it creates the next one), and it is unmapped only when deleted:
// by value-log GC, which defers the deletion while any iterator is open.
// gcSweeper holds one open while it reads /proc/self/maps and advises.

// The pager's sweep drops pieces' pages by key, inside their values'
// callbacks; a piece evicted before the sweep cannot be found that way, and
// a cache smaller than what streams through it evicts most pieces it
// writes. When a sweep meets one, it drops the older files as GC's sweeper
// does, and the whole mapping of the file that holds the newest piece it
// lists (the one badger writes, usually) from inside that piece's value
// callback, where badger's lock on the file keeps the mapping in place
// (dropFileOf).

// gcSweepEvery is how often the older files behind a running GC are
// swept, and gcHeadEvery how often the newest one is. GC reads the file it
// rewrites at memory speed, tens of MiB in a few milliseconds where it
// meets mostly garbage: each millisecond a sweep comes late is more RSS. A
// sweep of the older files is only madvise calls on mappings listed once
// (see gcSweeper), so it can run this often; the newest file's costs a
// badger lookup.
const (
	gcSweepEvery = time.Millisecond
	gcHeadEvery  = 5 * time.Millisecond
)

// gcSweeper sweeps the value-log files behind a running GC until stop is
// closed: the older files it reads, and, on a goroutine of its own, the
// newest, which it writes. The two are apart because the newest file's
// sweep waits on badger's lock of that file, which badger holds while it
// msyncs a full file (hundreds of milliseconds): meanwhile GC goes on
// reading an older one.
//
// It keeps one iterator open the whole time: badger defers deleting a
// value-log file while any iterator is open, so the mappings of the files
// older than the newest stay exactly as listed (badger never remaps those)
// until it closes the iterator; closing it deletes the file GC rewrote. A
// newer file found on the way adds the files before it to the list.
func (c *Cache) gcSweeper(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	txn := c.db.NewTransactionAt(c.ts.Load(), false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{}) // defers value-log deletions
	defer it.Close()
	var headWG sync.WaitGroup
	defer headWG.Wait()
	headWG.Add(1)
	go c.gcHeadSweeper(stop, &headWG)

	head := -1
	var old []mapSpan
	relist := func() {
		_, h := newestValueLog(c.dir)
		if h <= head {
			return
		}
		head = h
		old = old[:0]
		for _, s := range badgerValueLogMaps(c.mapsDir) {
			if s.fid < head {
				old = append(old, s)
			}
		}
	}
	relist()
	t := time.NewTicker(gcSweepEvery)
	defer t.Stop()
	relistEvery := int(gcHeadEvery / gcSweepEvery)
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if n%relistEvery == 0 {
			relist()
		}
		for _, s := range old {
			_ = madvise(s.lo, s.hi-s.lo, unix.MADV_DONTNEED)
		}
	}
}

// gcHeadSweeper drops the mapping of the newest value-log file, where GC
// writes what it moves, every gcHeadEvery until stop is closed.
func (c *Cache) gcHeadSweeper(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(gcHeadEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, head := newestValueLog(c.dir); head >= 0 {
			c.dropFileOf(head, c.recentKeys(16))
		}
	}
}

// dropOldMappings drops the page mappings of the value-log files older
// than the newest, and returns how many bytes of mappings it advised.
func (c *Cache) dropOldMappings() int64 {
	txn := c.db.NewTransactionAt(c.ts.Load(), false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{}) // defers value-log deletions
	defer it.Close()
	_, head := newestValueLog(c.dir)
	if head < 0 {
		return 0
	}
	var n int64
	for _, s := range badgerValueLogMaps(c.mapsDir) {
		if s.fid < head {
			if madvise(s.lo, s.hi-s.lo, unix.MADV_DONTNEED) == nil {
				n += int64(s.hi - s.lo)
			}
		}
	}
	return n
}

// badgerValueLogMaps lists badger's own mappings of dir's value-log files:
// the shared writable ones. prefill and refolio map files read-only, for a
// moment, and unmap them without any lock of badger's: those are left out.
func badgerValueLogMaps(dir string) []mapSpan {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil
	}
	var rw strings.Builder
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "rw-s" {
			rw.WriteString(line)
		}
	}
	return parseValueLogMaps(rw.String(), dir)
}

// dropFileOf drops the whole mapping of value-log file fid (any file when
// fid < 0) from inside the value callback of the first of keys whose piece
// it holds (see dropPages), and reports whether it found one.
func (c *Cache) dropFileOf(fid int, keys [][]byte) bool {
	done := false
	_ = c.db.View(func(txn *badger.Txn) error {
		for _, k := range keys {
			item, err := txn.Get(k)
			if err != nil {
				continue // evicted meanwhile
			}
			vp, ok := valuePointerOf(item)
			if !ok || fid >= 0 && int(vp.fid) != fid {
				continue
			}
			in := int(vp.fid)
			_ = item.Value(func(v []byte) error {
				// Badger holds the file's lock here: its mapping stays.
				maps := valueLogMaps{dir: c.mapsDir, spans: badgerValueLogMaps(c.mapsDir), loaded: true, reloaded: true}
				start := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
				if len(v) < valueThreshold || !maps.covers(start, start+uintptr(len(v)), in) {
					return nil
				}
				for _, s := range maps.spans {
					if s.fid == in {
						_ = madvise(s.lo, s.hi-s.lo, unix.MADV_DONTNEED)
					}
				}
				done = true
				return nil
			})
			if done {
				return nil
			}
		}
		return nil
	})
	return done
}

// recentKeys lists the keys of the piece Put last and of the n most
// recently used ones: one of them is likely in the newest value-log file
// (GC moves the pieces still in use there).
func (c *Cache) recentKeys(n int) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys [][]byte
	if e := c.lastPut; e != nil && e.state == statePresent {
		keys = append(keys, pieceKeyOf(kindPiece, e.ih(), e.piece))
	}
	for e := c.lru.root.next; e != &c.lru.root && len(keys) <= n; e = e.next {
		keys = append(keys, pieceKeyOf(kindPiece, e.ih(), e.piece))
	}
	return keys
}
