package cache

import (
	"errors"
	"fmt"
	"io/fs"
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
	Dir      string // data directory (badger files and the pieces folder under it); created if missing
	Capacity int64  // bytes of piece data allowed; 0 = DefaultCapacity
	// InMemory keeps nothing after Close (for tests). It is backed by a private
	// temporary directory, not by badger's in-memory mode, which caps values
	// at 1 MiB, below common piece sizes.
	InMemory bool
	// Logf receives warnings and errors from the cache and badger; nil means
	// log.Printf.
	Logf func(format string, args ...any)
}

// Cache is a bounded, persistent store of verified pieces keyed by
// (info-hash, piece index), plus each torrent's metainfo. All methods are
// safe for concurrent use. See the package documentation.
type Cache struct {
	// Read-only after Open.
	db          *badger.DB
	dir         string
	tempDir     bool // dir is ours to delete at Close (InMemory)
	capacity    int64
	logf        func(format string, args ...any)
	lock        *dirLock
	guard       diskGuard
	onEvict     atomic.Pointer[func(ih InfoHash, piece int)]
	ts          atomic.Uint64 // last commit timestamp handed out (managed mode)
	isClosed    atomic.Bool   // set first thing in Close
	punchFailed atomic.Bool   // the file system refused to punch a hole (logged once)
	writes      writes        // fresh pieces whose pages are dropped as the stream moves on (pagecache.go)
	gcMu        sync.Mutex    // serializes collect
	// raceWrites keeps writes out of value-log GC in -race builds only
	// (see runValueLogGC).
	raceWrites sync.RWMutex
	kick       chan struct{} // cap 1: wake the maintenance goroutine
	stop       chan struct{} // closed by Close
	done       sync.WaitGroup

	// life keeps db open under running calls: every call that touches db
	// holds it shared, Close takes it exclusively. First in the lock order.
	life sync.RWMutex

	// flushMu orders the badger writes of piece records that are not plain
	// Puts: the recency flush holds it exclusively; evictions, drops and a Put
	// that replaces a stored piece hold it shared. So a flush can never write
	// a record back after its piece was deleted or rewritten.
	// Lock order: life, flushMu, mu.
	flushMu sync.RWMutex

	// mu guards the index below. Never held across badger I/O, piece I/O, a
	// callback or a channel send.
	mu       sync.Mutex
	cond     sync.Cond // on mu: broadcast when an entry leaves stateWriting/stateEvicting, or its last reader goes
	torrents map[InfoHash]*torrent
	pins     map[pinKey]int32
	lru      lruList
	used     int64    // bytes of present and writing pieces
	clock    uint64   // recency clock; the next seq handed out
	dirty    []*entry // entries whose seq changed since the last flush
	garbage  bool     // metainfo was deleted since the last value-log collection
	closed   bool
}

type pinKey struct {
	ih    InfoHash
	piece uint32
}

// flushInterval is how often read recency is persisted; a variable so tests
// can shorten it.
var flushInterval = 30 * time.Second

// Open opens (creating if needed) the cache in opts.Dir and rebuilds its
// in-memory index from the piece records, without reading piece data. Data a
// crash left without a record is punched out of the piece files.
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
		stop:     make(chan struct{}),
	}
	c.cond.L = &c.mu
	c.lru.init()

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
		c.closeFiles() // load may have opened piece files
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
	lock, err := lockDir(dir)
	if err != nil {
		return fail(err)
	}
	c.lock = lock
	c.guard = diskGuard{dir: dir, reserve: diskReserve}
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

	if err := os.Mkdir(filepath.Join(dir, piecesDir), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fail(fmt.Errorf("cache: create %s: %w", filepath.Join(dir, piecesDir), err))
	}
	removeEmptyLogs(dir, logf)
	db, err := badger.OpenManaged(badgerOptions(dir, badgerLogger{logf}))
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
	c.writes.jobs = make(chan pageJob, pageJobs)
	c.writes.consumed = make(chan struct{}, 1)
	c.done.Add(2)
	go c.maintain()
	go c.pages()
	if c.garbage {
		c.kickGC() // a store of format 1 dropped its pieces: give their space back
	}
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
	err := c.flushRecency()
	c.db.SetDiscardTs(c.ts.Load()) // for the level-0 compaction Close does
	if cerr := c.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("cache: close store: %w", cerr)
	}
	c.closeFiles()
	if lerr := c.lock.release(); lerr != nil && err == nil {
		err = lerr
	}
	if c.tempDir {
		os.RemoveAll(c.dir)
	}
	return err
}

// closeFiles closes every piece file's descriptor (Close, or a failed Open).
func (c *Cache) closeFiles() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.torrents {
		for _, d := range t.files {
			d.close()
		}
		t.files = nil
	}
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

// MaxPiece returns the largest piece Put accepts: the capacity, or 1 GiB if
// smaller (the largest slot of a piece file).
func (c *Cache) MaxPiece() int64 { return min(int64(1)<<maxShift, c.capacity) }

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

// DiskUsage returns the bytes the store occupies on disk: piece data (blocks
// allocated to the piece files), badger's tables, logs and value log.
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

// valueThreshold: values this size or larger go to the value log: metainfo
// and peer notes over 1 KiB. Records stay in the LSM tree.
const valueThreshold = 1 << 10

// valueLogSize is badger's value-log file size: room for the largest
// metainfo (PutMeta takes up to half of it) and small enough that badger's
// mapping of it, and a GC that reads one whole, stay small.
const valueLogSize = 32 << 20

// minOpenFree is the free space an existing store needs to open when the
// disk is inside its reserve: room for what badger writes at Open.
const minOpenFree = 16 << 20

// diskReserve is the free space kept back on the data directory's disk: room
// for a value-log file being rewritten by GC plus tables and memtable logs,
// all written by badger through mappings (see "Errors" in the package doc).
const diskReserve = valueLogSize + 64<<20

// badgerOptions are chosen for an embedded store of small records; each
// departure from badger's defaults is explained in doc.go ("Badger options").
func badgerOptions(dir string, logger badger.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(logger).
		WithSyncWrites(false).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(valueLogSize).
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
