package cache

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// InfoHash names a torrent. The cache treats it as an opaque 20-byte key.
type InfoHash = [20]byte

// Errors. Wrapped errors carry details; test them with errors.Is.
var (
	// ErrNotFound means the piece (or metainfo) is not stored: never written,
	// evicted, dropped, or found corrupt on its first read and discarded.
	ErrNotFound = errors.New("cache: not found")
	// ErrFull means a Put could not make room: every stored piece is pinned,
	// the piece is larger than the cache takes (ErrTooLarge), or the disk is
	// nearly full (ErrDiskFull). Pins are released as readers move on, so
	// only the last two outlast the readers of the moment.
	ErrFull = errors.New("cache: full")
	// ErrDiskFull means the disk holding the cache is nearly full: writes are
	// refused to keep a reserve (see "Errors" in the package doc) until space
	// frees. It wraps ErrFull.
	ErrDiskFull = fmt.Errorf("%w: disk almost full", ErrFull)
	// ErrTooLarge means a piece is larger than the cache ever takes
	// (MaxPiece). It wraps ErrFull.
	ErrTooLarge = fmt.Errorf("%w: piece too large", ErrFull)
	// ErrLocked means another process (or another Cache in this process)
	// holds the data directory.
	ErrLocked = errors.New("cache: data directory locked")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("cache: closed")
)

// DefaultCapacity is used when Options.Capacity is 0.
const DefaultCapacity int64 = 10 << 30

// Options configure Open. The zero value is not usable: set Dir or InMemory.
type Options struct {
	Dir      string // data directory (badger files under it); created if missing
	Capacity int64  // bytes of piece data allowed; 0 = DefaultCapacity
	// InMemory keeps nothing after Close (for tests). It is backed by a private
	// temporary directory, not by badger's in-memory mode, which caps values
	// at 1 MiB, below common piece sizes.
	InMemory bool
	// Logf receives warnings and errors from the cache and badger; nil means
	// log.Printf.
	Logf func(format string, args ...any)
	// KeepMapped bounds the piece bytes whose value-log pages may stay
	// mapped into the process, and so count in its RSS, between sweeps of
	// the pager (see pager.go); 0 means DefaultKeepMapped. Negative never
	// unmaps: RSS then grows with what is written (and read for the first
	// time) until the kernel reclaims it.
	KeepMapped int64
}

// Cache is a bounded, persistent store of verified pieces keyed by
// (info-hash, piece index), plus each torrent's metainfo. All methods are
// safe for concurrent use. See the package documentation.
type Cache struct {
	// Read-only after Open.
	db         *badger.DB
	dir        string
	mapsDir    string // dir as /proc/self/maps names it (see valueLogMaps)
	tempDir    bool   // dir is ours to delete at Close (InMemory)
	capacity   int64
	vlogSize   int64 // badger ValueLogFileSize; also the largest piece accepted
	keepMapped int64 // Options.KeepMapped with the default applied
	trigger    int64 // garbage bytes that prompt an early value-log collection
	logf       func(format string, args ...any)
	lock       *dirLock
	guard      diskGuard
	files      valueLogFiles  // descriptors for direct reads (direct.go)
	newestSeen atomic.Int64   // the newest value-log file Puts saw, 0 before the first (see dropFinished)
	head       headLog        // the value-log file being written (pager.go)
	prefills   sync.WaitGroup // a running prefill (pager.go); Puts add to it
	onEvict    atomic.Pointer[func(ih InfoHash, piece int)]
	ts         atomic.Uint64 // last commit timestamp handed out (managed mode)
	written    atomic.Int64  // bytes put since the last writeback
	pageKick   chan struct{} // cap 1: wake the pager goroutine
	isClosed   atomic.Bool   // set first thing in Close
	gcMu       sync.Mutex    // serializes collect
	sweepMu    sync.Mutex    // serializes sweeps (the pager's and Puts')
	// raceWrites keeps writes out of value-log GC in -race builds only
	// (see runValueLogGC).
	raceWrites sync.RWMutex
	kick       chan struct{} // cap 1: wake the maintenance goroutine
	stop       chan struct{} // closed by Close
	done       sync.WaitGroup

	// pagesRefused counts values the pager did not unmap because they lay
	// outside the value-log mappings (see dropPages): 0 unless badger
	// changed how it hands out values.
	pagesRefused atomic.Int64

	// life keeps db open under running calls: every call that touches db
	// holds it shared, Close takes it exclusively. First in the lock order.
	life sync.RWMutex

	// flushMu orders the badger writes of piece records that are not plain
	// Puts: the recency flush holds it exclusively; evictions, drops and a Put
	// that replaces a stored piece hold it shared. So a flush can never write
	// a record back after its piece was deleted or rewritten.
	// Lock order: life, flushMu, mu.
	flushMu sync.RWMutex

	// mu guards the index below. Never held across badger I/O, a callback or
	// a channel send.
	mu       sync.Mutex
	cond     sync.Cond // on mu: broadcast when an entry leaves stateWriting/stateEvicting
	torrents map[InfoHash]*torrent
	pins     map[pinKey]int32
	lru      lruList
	used     int64    // bytes of present and writing pieces
	clock    uint64   // recency clock; the next seq handed out
	dirty    []*entry // entries whose seq changed since the last flush
	mapped   []*entry // entries whose pages may be mapped since the last sweep
	listed   int64    // their total size
	lastPut  *entry   // the piece Put last (its value is in the newest value-log file, or moved by GC)
	opening  bool     // the first sweep after Open is due
	garbage  int64    // bytes deleted since the last value-log collection
	closed   bool
}

type pinKey struct {
	ih    InfoHash
	piece uint32
}

// Tuning knobs, variables so tests can shorten them.
var (
	flushInterval = 30 * time.Second // persist read recency this often
	gcInterval    = time.Minute      // value-log GC pass even without a trigger
)

// Open opens (creating if needed) the cache in opts.Dir and rebuilds its
// in-memory index from the piece records, without reading piece data.
func Open(opts Options) (*Cache, error) {
	capacity := opts.Capacity
	if capacity == 0 {
		capacity = DefaultCapacity
	}
	if capacity < 0 {
		return nil, fmt.Errorf("cache: negative capacity %d", capacity)
	}
	logf := opts.Logf
	if logf == nil {
		logf = log.Printf
	}
	c := &Cache{
		capacity: capacity,
		logf:     logf,
		torrents: make(map[InfoHash]*torrent),
		pins:     make(map[pinKey]int32),
		kick:     make(chan struct{}, 1),
		pageKick: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	c.cond.L = &c.mu
	c.lru.init()
	c.keepMapped = opts.KeepMapped
	if c.keepMapped == 0 {
		c.keepMapped = DefaultKeepMapped
	}
	c.vlogSize = valueLogFileSize(capacity)
	// Half a value-log file for the files of 64 MiB and more, 32 MiB
	// for a small cache's smaller ones: each collection flushes and
	// compacts the tree first, too costly to do every few MiB.
	c.trigger = max(capacity/16, 32<<20)

	dir := opts.Dir
	if opts.InMemory {
		d, err := os.MkdirTemp("", "swarmfs-cache-*")
		if err != nil {
			return nil, fmt.Errorf("cache: in-memory store: %w", err)
		}
		dir, c.tempDir = d, true
	} else if dir == "" {
		return nil, errors.New("cache: no data directory given")
	}
	c.dir = dir
	fail := func(err error) (*Cache, error) {
		if c.db != nil {
			c.db.Close()
		}
		c.lock.release()
		if c.tempDir {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	if err := checkWritable(dir); err != nil {
		return fail(err)
	}
	c.mapsDir = kernelPath(dir)
	lock, err := lockDir(dir)
	if err != nil {
		return fail(err)
	}
	c.lock = lock
	c.guard = diskGuard{dir: dir, reserve: diskReserve(c.vlogSize)}
	c.files = valueLogFiles{dir: dir, logf: logf}
	if err := c.guard.admit(0); err != nil {
		// A store that exists still serves what it holds: a disk filled
		// once (by us up to the reserve, or by anything else) must not
		// make the cache unusable. Its writes are refused until space
		// frees, by the same guard. A new store would have to write, and
		// badger's Open itself writes a little (a lock file, the header
		// of a new memtable log, through a mapping: SIGBUS on a full disk).
		free, _ := c.guard.room()
		if !storeExists(dir) || free+c.guard.reserve < minOpenFree {
			return fail(fmt.Errorf("cache: cannot open %s (%s needed): %w", dir, formatSize(minOpenFree), err))
		}
		logf("%v: serving the pieces stored; new pieces are refused until space frees", err)
	}
	if free, err := freeSpace(dir); err == nil && free+diskUsage(dir) < capacity {
		logf("cache: capacity %s exceeds the space left for %s (%s): writes will fail with a full disk before eviction starts",
			formatSize(capacity), dir, formatSize(free+diskUsage(dir)))
	}

	removeEmptyLogs(dir, logf)
	db, err := badger.OpenManaged(badgerOptions(dir, c.vlogSize, badgerLogger{logf}))
	if err != nil {
		return fail(fmt.Errorf("cache: open store in %s: %w", dir, err))
	}
	c.db = db
	c.ts.Store(db.MaxVersion())
	if err := c.checkFormat(); err != nil {
		return fail(err)
	}
	if err := c.load(); err != nil {
		return fail(err)
	}
	// We only ever read the newest version of a key, so compactions may drop
	// every older one; collect moves this mark forward.
	db.SetDiscardTs(c.ts.Load())
	// A capacity smaller than what is stored is not enforced here but by
	// the next Put: a process that only looks (swarmfs cache) must not
	// evict what a mount with a larger limit keeps.
	c.opening = true
	c.done.Add(2)
	go c.maintain()
	go c.pager()
	c.kickPager() // unmap what badger's Open read of the newest value log mapped
	return c, nil
}

// removeEmptyLogs deletes zero-length memtable and value logs: a crash
// between creating such a file and sizing it leaves it empty, and badger
// then refuses to open (dgraph-io/badger#2207: it sizes the file, calls that
// z.NewFile, and fails with the sentinel flattened into a string, so the
// error cannot be told apart with errors.Is). An empty log holds no entries,
// so nothing is lost.
func removeEmptyLogs(dir string, logf func(string, ...any)) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".mem") && !strings.HasSuffix(name, ".vlog") {
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() == 0 {
			logf("cache: removing empty log %s left by a crash", name)
			os.Remove(filepath.Join(dir, name))
		}
	}
}

// Close persists read recency, stops background work and closes the store.
// Calls made after Close return ErrClosed (or false / nil).
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.isClosed.Store(true)
	c.cond.Broadcast()
	c.mu.Unlock()

	close(c.stop)
	c.done.Wait()

	c.life.Lock()
	defer c.life.Unlock()
	c.prefills.Wait() // no Put runs now to start another
	c.releaseFiles()
	err := c.flushRecency()
	c.db.SetDiscardTs(c.ts.Load()) // for the level-0 compaction Close does
	if cerr := c.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("cache: close store: %w", cerr)
	}
	if lerr := c.lock.release(); lerr != nil && err == nil {
		err = lerr
	}
	if c.tempDir {
		os.RemoveAll(c.dir)
	}
	return err
}

// enter marks the start of a call that uses db; it fails after Close.
// The caller must call c.life.RUnlock when done.
func (c *Cache) enter() bool {
	c.life.RLock()
	if c.isClosed.Load() {
		c.life.RUnlock()
		return false
	}
	return true
}

// Capacity returns the configured limit on piece bytes.
func (c *Cache) Capacity() int64 { return c.capacity }

// MaxPiece returns the largest piece Put accepts: the capacity, or the
// value-log file size if smaller (see "Badger options" in the package doc).
func (c *Cache) MaxPiece() int64 { return min(c.vlogSize, c.capacity) }

// Room reports whether a piece of n bytes could be put now, evicting what
// may be evicted: nil, or an error wrapping ErrTooLarge, ErrDiskFull or
// (everything else pinned or being written) ErrFull. It reserves nothing:
// a Put may still fail.
func (c *Cache) Room(n int64) error {
	if n > c.MaxPiece() {
		return fmt.Errorf("%w: %s, the cache takes pieces up to %s", ErrTooLarge, formatSize(n), formatSize(c.MaxPiece()))
	}
	c.mu.Lock()
	held := c.used - c.lru.bytes // pinned or being written
	c.mu.Unlock()
	if held+n > c.capacity {
		return fmt.Errorf("%w: %s pinned or being written of %s", ErrFull, formatSize(held), formatSize(c.capacity))
	}
	free, err := c.guard.room()
	if err != nil {
		return err
	}
	if free < n {
		return c.guard.fullErr()
	}
	return nil
}

// Free returns the bytes that can be put without evicting anything: what
// is left of the capacity, or of the disk above its reserve if less.
func (c *Cache) Free() int64 {
	c.mu.Lock()
	free := c.capacity - c.used
	c.mu.Unlock()
	if disk, err := c.guard.room(); err == nil {
		free = min(free, disk)
	}
	return max(free, 0)
}

// Size returns the bytes of piece data stored or being stored.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// DiskUsage returns the bytes the store occupies on disk: piece data, value
// log garbage not yet collected, tables and logs.
func (c *Cache) DiskUsage() int64 { return diskUsage(c.dir) }

// OnEvict registers fn to be called after a piece leaves the cache on its own
// (eviction, or a stored piece found corrupt), so the caller can stop
// advertising it. It is not called for DropTorrent. fn runs on the goroutine
// that caused the eviction, with no cache lock held; it may call the cache.
// A later call replaces fn; nil removes it.
func (c *Cache) OnEvict(fn func(ih InfoHash, piece int)) {
	if fn == nil {
		c.onEvict.Store(nil)
		return
	}
	c.onEvict.Store(&fn)
}

// valueLogFileSize picks the value-log file size for a capacity: large enough
// for big pieces (it is also the largest piece accepted), small enough that
// GC, which rewrites one file at a time, reclaims space in fine steps. A
// cache under 256 MiB gets files of an eighth of it (at least 8 MiB): GC
// reads the file it rewrites whole through badger's mapping, faster than its
// sweeper can always follow (see gcsweep.go), and the file being written is
// mapped as fast as it is written, between sweeps; so the file size bounds
// what each of them maps into the process. Files as large as the whole
// cache made that the largest item of a small cache's peak RSS, and with a
// quarter of it, what still grew with the length of a stream (a 64 MiB
// cache streaming 1 GiB peaked at 106-109 MiB with 16 MiB files, 96-97 with
// 8 MiB ones). Such a cache has little use for larger pieces: its readahead
// window is a quarter of it (see cmd/swarmfs), two of them.
func valueLogFileSize(capacity int64) int64 {
	if capacity < 256<<20 {
		return max(capacity/8, 8<<20)
	}
	return min(max(capacity/16, 64<<20), 128<<20)
}

// valueThreshold: values this size or larger go to the value log. Pieces
// always do (they are at least 16 KiB but for a torrent's last piece);
// records, tiny last pieces and small metainfo stay in the LSM tree.
// dropPages expects values this size or larger in the value log, and
// checks it (see valueLogMaps).
const valueThreshold = 1 << 10

// minOpenFree is the free space an existing store needs to open when the
// disk is inside its reserve: room for what badger writes at Open.
const minOpenFree = 16 << 20

// diskReserve is the free space kept back on the data directory's disk: room
// for a value-log file being rewritten by GC plus tables and memtable logs.
func diskReserve(vlogSize int64) int64 { return vlogSize + 64<<20 }

// badgerOptions are chosen for an embedded cache of large values; each
// departure from badger's defaults is explained in doc.go ("Badger options").
func badgerOptions(dir string, vlogSize int64, logger badger.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(logger).
		WithSyncWrites(false).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(vlogSize).
		WithMemTableSize(2 << 20).
		WithBaseTableSize(1 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithCompression(options.None).
		WithNumCompactors(2).
		WithDetectConflicts(false).
		WithMetricsEnabled(false).
		WithNumGoroutines(2).
		WithCompactL0OnClose(true).
		WithChecksumVerificationMode(options.OnTableRead)
}

// badgerLogger forwards badger's warnings and errors; its info and debug
// chatter (every compaction, every flush) is dropped.
type badgerLogger struct{ logf func(string, ...any) }

func (l badgerLogger) Errorf(f string, a ...any)   { l.logf("cache: badger: "+trimNL(f), a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.logf("cache: badger: "+trimNL(f), a...) }
func (l badgerLogger) Infof(string, ...any)        {}
func (l badgerLogger) Debugf(string, ...any)       {}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
