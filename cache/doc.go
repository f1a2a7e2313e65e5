// Package cache is swarmfs's piece store: verified pieces kept under a
// capacity limit, least recently read first out, surviving restarts and
// kill -9. Piece data lives in files of our own; their small records (and
// each torrent's metainfo) in badger (github.com/dgraph-io/badger/v4). It
// knows info-hashes, piece indexes and bytes, not torrents: it imports no
// other swarmfs package.
//
// # Concepts
//
//   - Cache: one open store in one data directory, its main type. Safe for
//     concurrent use. Open it once per process; a second Open of the same
//     directory (from any process) fails with ErrLocked.
//   - Piece: the bytes of one verified piece, stored whole under
//     (info-hash, index) in a slot of a piece file (see "Piece files").
//     ReadAt reads any range of it with one pread.
//   - Index: in memory, one small entry per stored piece (size, checksum,
//     recency, slot, LRU links: about 200-270 bytes with the maps). Has,
//     Pieces, Usage and Size answer from it alone. Open rebuilds it from the
//     piece records without reading any piece data.
//   - Pin: a counted hold on a piece (stored or not yet) that eviction
//     respects. Readers pin their window; pins are not persisted.
//   - Metainfo: a torrent's .torrent or info bytes (PutMeta), so a torrent
//     added by magnet comes back after a restart. Not counted against the
//     capacity and never evicted; DropTorrent removes it.
//   - Peers: bytes kept beside a torrent's metainfo (PutPeers) that the
//     cache does not read: the session's list of the peers that served the
//     torrent best, dialled first when it starts again. Dropped with it.
//
// # Piece files
//
// The data directory holds badger's files and a folder "pieces" with one
// file per torrent and slot size, named "<info-hash in hex>-<shift>": piece
// i is at offset i<<shift, in a slot of 1<<shift bytes (4 KiB to 1 GiB). A
// torrent's pieces all have its piece length but the last, so a torrent has
// one file, or two when its short last piece was stored first (the next
// full piece moves new pieces to a file of larger slots; the smaller one
// keeps what it holds). The files are sparse: only stored pieces take
// blocks, and the apparent size is about the torrent's.
//
// Put writes the piece with pwrite, then commits its record; eviction
// deletes the record, then punches a hole over the slot (fallocate
// FALLOC_FL_PUNCH_HOLE), which gives its blocks back at once: disk use is
// the stored bytes, rounded to blocks, plus badger's few MiB, at every
// moment (TestDiskFollowsEviction). A file system that cannot punch holes
// is logged once; its files then keep the blocks of evicted pieces until
// the slot is written again or the torrent is dropped. Reads go through
// the page cache with pread, writes with pwrite: nothing of a piece is
// mapped into the process, so streaming any amount through the cache does
// not grow its RSS (TestStreamingMapsNothing), and a full disk is an
// ENOSPC from pwrite, not a SIGBUS (TestWriteFailsOnFullDisk). A written
// piece is handed to writeback at once, and once a reader has read it
// (Consumed: the mount's page cache holds it then) its pages here are
// dropped as newer pieces arrive, or a second later once none arrive, so a
// streamed byte takes one page, not two (TestConsumedPagesDropped,
// TestIdleConsumedPagesDropped; pagecache.go).
//
// A slot is reused when its piece is stored again, so a reader must never
// read a slot being punched or rewritten: ReadAt counts itself as a reader
// of the entry, and eviction waits for an entry's readers before it
// deletes anything (TestReadNeverSeesEvictedSlot). A piece rewritten in
// place (one stored before this process and not yet verified) is only read
// by a verifying read, which fails its check if it meets half-written
// bytes and then finds the piece not present.
//
// Each piece file has one descriptor while any of its pieces is stored or
// being written, closed with the last; the file stays (empty) until the
// torrent is dropped or the next Open.
//
// # Key layout
//
// Every key starts with a one-byte kind; per-torrent kinds continue with the
// 20-byte info-hash, so a torrent's keys of one kind are contiguous:
//
//	'i' | ih | piece (u32 BE)   record: version, size u32, checksum u64, recency u64, slot shift u8 (22 bytes)
//	'm' | ih                    metainfo bytes
//	'e' | ih                    the caller's peer notes (PutPeers, at most 4 KiB)
//	'v'                         store format version (2)
//	'z'                         throwaway key; see "Getting disk space back"
//	'p' | ih | piece (u32 BE)   format 1 only: piece bytes in the value log
//
// The checksum is xxhash64 of ih | piece | data: bytes read from the wrong
// slot would fail it. A store of format 1 (pieces in badger's value log,
// as swarmfs wrote before the piece files) opens: its pieces are dropped
// (they download again when read), its metainfo and peer notes kept, and
// the upgrade is logged (TestFormat1StoreUpgraded).
//
// # Eviction
//
// Put evicts before it writes: if the new piece would take the stored bytes
// past Capacity, least recently used unpinned pieces go first, until it fits.
// Recency is exact while the process runs: a doubly-linked list, most recent
// at the front, updated by every Put and ReadAt under one short mutex (no
// badger write on the read path). Recency reaches badger lazily: records of
// pieces read since the last flush are rewritten every 30 s and at Close.
// After a crash the order is that of the last flush: approximate, never
// wrong about what is stored. Opening with a smaller Capacity than what is
// stored evicts nothing until the next Put, which evicts down to it (so a
// process that only inspects the cache cannot shrink it). If only pinned pieces are left to evict, Put
// fails with ErrFull and evicts nothing. OnEvict hears of each evicted piece
// after it is deleted, on the goroutine that caused the eviction, with no
// lock held.
//
// # Getting disk space back
//
// Pieces give their space back when evicted (a punched hole). What remains
// for badger is its value log, which only metainfo and peer notes over
// 1 KiB reach: deleting one writes a tombstone, and its bytes stay in a
// value-log file until value-log GC rewrites that file's live entries
// elsewhere and deletes it. Badger leaves GC to the application and only
// knows what is garbage from statistics that LSM compactions compute, so
// after DropTorrent removed metainfo (and after a format 1 store dropped its
// pieces) the maintenance goroutine:
//
//  1. flushes the memtables (DropPrefix of the throwaway 'z' key, the only
//     public way; it blocks writes for milliseconds, Put retries);
//  2. waits for level 0 to be compacted and Flattens the tree, so every
//     tombstone meets the value it deletes and the statistics are complete;
//  3. runs RunValueLogGC(0.5) while it rewrites files.
//
// DiskUsage reports the real figure (allocated blocks, not the sparse
// apparent sizes).
//
// # Badger options, and why
//
// Departures from badger.DefaultOptions, for an embedded store of small
// records in a process that should stay under ~100 MiB:
//
//   - OpenManaged: we hand out commit timestamps and read at the newest
//     version. In normal mode every new transaction, even a read, waits until
//     the latest commit has been applied. Managed mode needs SetDiscardTs to
//     let compactions drop old versions; Open, collect and Close move it to
//     the newest timestamp.
//   - ValueThreshold 1 KiB (default 1 MiB): records stay in the LSM tree;
//     metainfo over 1 KiB goes to the value log, where compactions do not
//     rewrite it.
//   - ValueLogFileSize 32 MiB (default 1 GiB): only metainfo reaches it, up
//     to 16 MiB each (PutMeta refuses more; metainfo.MaxTorrentSize is 16 MiB
//     too); badger maps the file being written, and GC reads one whole.
//   - MemTableSize 2 MiB, NumMemtables 2 (defaults 64 MiB and 5): memtables
//     hold records (about 100 bytes a piece, so 20,000 pieces fill one);
//     each costs its size plus arena slack in anonymous memory, so ~5 MiB
//     instead of ~350 MiB. A transaction holds at most about 3,200 entries
//     (deleteBatch stays well inside that).
//   - BaseTableSize 1 MiB (default 2 MiB): a table builder takes twice it
//     from a pool badger keeps, and every collection flushes a memtable
//     into a table; tables of a few hundred KiB are all a cache's tree
//     needs. With the smaller memtables that is 5 MiB less of live Go heap
//     (TestBadgerBuffersHeap), under a mount's soft memory limit of
//     56 MiB plus the index's room.
//   - BlockCacheSize 0 (default 256 MiB): with compression off, table blocks
//     are read straight from their memory map; a cache would duplicate them.
//   - IndexCacheSize 0 (all table indexes and bloom filters in memory): the
//     LSM tree holds ~100 bytes per piece, a few MiB for 50 GiB of 1 MiB
//     pieces, so its index is small; a ristretto cache would cost more.
//   - Compression None (default Snappy): records are small and
//     random-looking; metainfo is mostly SHA-1 hashes.
//   - NumCompactors 2 (default 4): the tree is small; two is badger's minimum
//     (one is reserved for level 0).
//   - DetectConflicts false: no transaction reads before it writes; ordering
//     is ours (see "Lock order").
//   - MetricsEnabled false: no expvar maps; DiskUsage stats the directory.
//   - SyncWrites false: a cache need not survive power loss piece for piece;
//     see "Crashes".
//   - CompactL0OnClose true: the next Open starts from a tidy tree.
//   - ChecksumVerificationMode OnTableRead: tables are checked when opened
//     (cheap: the tree is small).
//   - Logger: warnings and errors go to Options.Logf; info and debug are
//     dropped.
//
// # Memory
//
// Anonymous memory: the index (~200-270 bytes of Go heap a piece: about
// 14 MiB for 50 GiB of 1 MiB pieces, 40 MiB for 50 GiB of 256 KiB pieces),
// memtables (~5 MiB), table indexes (small), and a pooled 256 KiB buffer per
// concurrent first read (see "Crashes"). TestIndexMemory measures it: the
// process grows by ~21 MiB of anonymous memory for 51,200 pieces, ~55-68 MiB
// for 204,800. Piece data is never mapped (see "Piece files"): it is in the
// page cache, which the kernel reclaims, not in the process.
//
// # Reads
//
// A verified piece is read with one pread from its piece file, straight from
// the page cache into the caller's buffer (BenchmarkReadPiece against
// BenchmarkPlainFileReadPiece measures what the index adds to a plain file's
// pread). Files written with pwrite sit in the page cache in large folios,
// which the kernel copies from fastest.
//
// # Crashes
//
// After SIGKILL nothing committed is lost: a piece's bytes are written (to
// the page cache) before its record commits, and badger's memtable log is
// written through a shared mapping, so the page cache holds both whatever
// happens to the process. Badger replays the memtable log at Open, dropping
// a transaction whose end is missing; at most the pieces being written are
// lost (TestCrashSIGKILL kills a writer six times at random points and
// checks every piece). Pieces chosen for eviction whose delete had not
// committed survive, so the store can reopen a few pieces over capacity;
// the next Put evicts them. Bytes a kill left without a record (written
// before their record committed, or of an evicted piece before its hole was
// punched) are punched at Open (punchOrphans walks each file's data extents
// with SEEK_DATA and SEEK_HOLE: a few syscalls per file), and files no
// record refers to are removed. A record whose slot lies past the end of
// its file (a file truncated or lost) is deleted at Open. After a power loss
// (SyncWrites is off), recent pieces may be lost or read back as zeros: our
// checks catch them.
//
// Every piece is verified against its checksum on its first read in each
// process (the whole piece, even for a 4 KiB read, hashed in 256 KiB chunks;
// about 0.1 ms per MiB), whether the last stop was clean or not: a
// clean-shutdown marker would save one hash per piece per run and miss
// damage done while stopped. A piece that fails (checksum, or a file that
// ends inside it) is deleted, OnEvict is called, and ReadAt returns an
// error wrapping ErrNotFound, so the engine downloads it again. Pieces
// written in this process are trusted. A crash between creating a badger
// log file and sizing it leaves an empty file that badger refuses
// (badger#2207); Open removes empty logs first.
//
// # Errors
//
// A data directory that cannot be created or written, one locked by another
// process ("data directory ... is in use by another swarmfs process (pid
// N)", ErrLocked), a full cache (ErrFull: everything pinned), a piece larger
// than the cache takes (ErrTooLarge, which wraps ErrFull; MaxPiece says the
// limit) and a nearly full disk (ErrDiskFull, which wraps ErrFull) each give
// a clear error. The disk check matters for badger: it writes its memtable
// and value logs through mmap, and a store to a mapped page of a sparse file
// on a full disk raises SIGBUS, killing the process; so Put, PutMeta and
// PutPeers keep a reserve of 96 MiB free (a value-log file plus 64 MiB) and
// refuse beyond it, before evicting anything. Piece data itself goes
// through pwrite, which a full disk fails with ENOSPC: the Put fails with
// ErrDiskFull and punches back what it wrote. The recency flush waits too.
// A store that exists opens on a disk inside its reserve (one filled by an
// earlier run, or by anything else) and serves what it holds, refusing new
// pieces until space frees; only below minOpenFree (16 MiB: what badger's
// Open writes) does Open refuse. Room and Free tell a caller whether a Put
// could succeed now, without trying it: the engine retries a refused piece
// only when one says so, or after a back-off, never in a loop.
//
// # Goroutines and lock order
//
// Open starts one goroutine that Close stops and waits for: maintenance
// (recency flush, compaction and value-log GC; see maint.go). Locks, in the
// order they are taken:
//
//	life     RWMutex: keeps db open under running calls; Close takes it exclusively
//	gcMu     Mutex: one collect at a time (maintenance; tests)
//	flushMu  RWMutex: the recency flush holds it exclusively; deletions and
//	         replacing Puts hold it shared, so a flush never writes a record
//	         back after its piece was deleted or rewritten
//	raceWrites  RWMutex, -race builds only: keeps our writes out of
//	         value-log GC, whose start races benignly with badger's writer
//	         (see runValueLogGC)
//	mu       Mutex: the index, LRU list, pins, readers, piece files and the
//	         dirty list
//	diskGuard.mu  leaf
//
// mu is never held across badger I/O, piece I/O, a callback or a channel
// send (but DropTorrent's removal of its files: a few unlinks). Put of a
// piece that is being written or evicted waits (on cond) for that to
// finish; eviction waits (on cond) for an entry's readers.
//
// # Pitfalls
//
//   - A badger value is valid only inside item.Value's callback.
//   - OnEvict callbacks run inside Put (or ReadAt): they must not call Close.
//   - Size includes pieces being written. Metainfo is not counted.
//   - DropTorrent does not call OnEvict, and a Put still running when it
//     starts may leave that piece behind.
//   - InMemory is backed by a temporary directory removed at Close: badger's
//     own in-memory mode refuses values over 1 MiB.
package cache
