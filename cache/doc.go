// Package cache is swarmfs's piece store: verified pieces kept in badger
// (github.com/dgraph-io/badger/v4) under a capacity limit, least recently
// read first out, surviving restarts and kill -9. It knows info-hashes,
// piece indexes and bytes, not torrents: it imports no other swarmfs package.
//
// # Concepts
//
//   - Cache: one open store in one data directory, its main type. Safe for
//     concurrent use. Open it once per process; a second Open of the same
//     directory (from any process) fails with ErrLocked.
//   - Piece: the bytes of one verified piece, stored whole under
//     (info-hash, index). ReadAt reads any range of it with a single copy:
//     a pread from the value-log file that holds it (see "Reads").
//   - Index: in memory, one small entry per stored piece (size, checksum,
//     recency, LRU links: about 200-270 bytes with the maps). Has, Pieces, Usage
//     and Size answer from it alone. Open rebuilds it from the piece records
//     without reading any piece data.
//   - Pin: a counted hold on a piece (stored or not yet) that eviction
//     respects. Readers pin their window; pins are not persisted.
//   - Metainfo: a torrent's .torrent or info bytes (PutMeta), so a torrent
//     added by magnet comes back after a restart. Not counted against the
//     capacity and never evicted; DropTorrent removes it.
//   - Peers: bytes kept beside a torrent's metainfo (PutPeers) that the
//     cache does not read: the session's list of the peers that served the
//     torrent best, dialled first when it starts again. Dropped with it.
//
// # Key layout
//
// Every key starts with a one-byte kind; per-torrent kinds continue with the
// 20-byte info-hash, so a torrent's keys of one kind are contiguous:
//
//	'p' | ih | piece (u32 BE)   piece bytes, raw (in the value log)
//	'i' | ih | piece (u32 BE)   record: version, size u32, checksum u64, recency u64 (21 bytes, inline)
//	'm' | ih                    metainfo bytes
//	'e' | ih                    the caller's peer notes (PutPeers, at most 4 KiB)
//	'v'                         store format version (1)
//	'z'                         throwaway key; see "Getting disk space back"
//
// A piece's 'p' and 'i' keys are written in one transaction and deleted in
// one, so after any crash both exist or neither. The checksum is xxhash64 of
// ih | piece | data: a value that surfaced under the wrong key would fail it.
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
// Deleting a piece only writes a tombstone; its bytes stay in a value-log
// file until value-log GC rewrites that file's live entries elsewhere and
// deletes it. Badger leaves GC to the application (RunValueLogGC rewrites at
// most one file per call, when at least the given share of it is garbage),
// and it only knows what is garbage from statistics that LSM compactions
// compute. Our memtables hold keys and value pointers only, so one fills
// after tens of thousands of puts, gigabytes of data: without help, deleted
// pieces would not be counted, and the disk would not shrink, for a long
// time. So the maintenance goroutine, after each eviction of a sixteenth of
// the capacity (or 32 MiB, whichever is larger) and every
// minute:
//
//  1. flushes the memtables (DropPrefix of the throwaway 'z' key, the only
//     public way; it blocks writes for milliseconds, Put retries);
//  2. waits for level 0 to be compacted and Flattens the tree, so every
//     tombstone meets the value it deletes and the statistics are complete;
//  3. runs RunValueLogGC(0.5) while it rewrites files, and, if the disk use
//     is still above the stored bytes plus the margin, RunValueLogGC(0.2).
//
// Disk use therefore stays below Capacity plus a margin of max(Capacity/10,
// 2 value-log files) plus 32 MiB for tables and logs, in steady state
// (TestValueLogShrinks checks it); files less than a fifth garbage are not
// rewritten, which bounds the rewriting cost. DiskUsage reports the real
// figure (allocated blocks, not the sparse apparent sizes).
//
// # Badger options, and why
//
// Departures from badger.DefaultOptions, for an embedded cache of large
// values in a process that should stay under ~100 MiB:
//
//   - OpenManaged: we hand out commit timestamps and read at the newest
//     version. In normal mode every new transaction, even a read, waits until
//     the latest commit has been applied, so a 4 KiB read would wait for a
//     1 MiB piece write in flight, or for the msync of a full value-log file.
//     Managed mode needs SetDiscardTs to let compactions drop old versions;
//     Open, collect and Close move it to the newest timestamp.
//   - ValueThreshold 1 KiB (default 1 MiB): pieces always go to the value
//     log; the default would keep pieces under 1 MiB in the LSM tree, to be
//     rewritten by every compaction. Records and tiny last pieces stay inline.
//   - ValueLogFileSize Capacity/16 clamped to [64 MiB, 128 MiB], and an
//     eighth of a cache under 256 MiB, at least 8 MiB (default 1 GiB): GC
//     reclaims space a file at a time, so smaller files mean finer steps,
//     and a shorter msync when a file is closed; and GC may map the whole
//     file it rewrites into the process (see "Memory"). It is also the
//     largest piece accepted. A 50 GiB cache has about 400 files (one
//     descriptor and one mapping each). Streaming 1 GiB through a 64 MiB
//     cache peaked at 99-105 MiB of RSS with 16 MiB files against 117-118
//     with 64 MiB ones, for about a third more CPU (more files to start,
//     prefill and close, more collections); at 96-97 MiB with 8 MiB files
//     against 106-109 with 16 MiB ones, on a busier machine.
//   - MemTableSize 2 MiB, NumMemtables 2 (defaults 64 MiB and 5): memtables
//     hold keys and pointers only (about 100 bytes a piece, so 20,000
//     pieces fill one); each costs its size plus arena slack in anonymous
//     memory, so ~5 MiB instead of ~350 MiB. A transaction holds at most
//     about 3,200 entries (deleteBatch stays well inside that).
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
//   - Compression None (default Snappy): pieces are already compressed media
//     or random-looking; keys gain little.
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
// memtables (~5 MiB), table indexes (small), and transient buffers while
// writing (badger encodes each write in a buffer of the piece's size).
// TestIndexMemory measures it: the process grows by ~21 MiB of anonymous
// memory for 51,200 pieces, ~55-68 MiB for 204,800.
//
// File-backed memory: badger writes the value log through mmap, and every
// page the process touches counts in its RSS until the kernel reclaims it.
// Reads of verified pieces do not touch the mapping (see "Reads"); writes
// and first reads do. Sweeps keep that in check: they drop the mappings
// (madvise MADV_DONTNEED, see dropPages) of pieces written or read through
// the mapping, once they add up to twice Options.KeepMapped (default
// 2 MiB), keeping the most recently used KeepMapped bytes, and of all of
// them after 2 s without activity; the data stays in the page cache. The
// Put that reaches twice KeepMapped sweeps itself, so a writer never maps
// much more than that (TestPutSweepsWhatItMapped); the pager sweeps what
// reads mapped. KeepMapped < 0 turns unmapping off. A piece evicted before
// the sweep cannot be found by key any more (a cache smaller than what
// streams through it evicts most of what it writes), and many pieces would
// cost a lookup each: then the sweep drops whole files, see gcsweep.go.
// Sweeps by key also leave what lies between the pieces they list, and a
// Put may find another sweep running; so when badger starts a new
// value-log file, the next Put drops the older files' mappings whole
// (dropFinished; TestRotationUnmapsOlderFiles). What a file being written
// maps is bounded by its size too, which is why a small cache's files are
// small (see "Badger options").
// Value-log GC reads the file it rewrites whole through badger's mapping,
// and writes what it moves through the newest file's: while it runs, a
// sweeper drops the older files every millisecond and the newest every
// 5 ms (gcsweep.go says why that is safe), where a collect used to map a
// whole value-log file (64-128 MiB) into the process
// (TestGCSweepsValueLog). MADV_DONTNEED would zero memory of our
// own, so a range is advised only if /proc/self/maps shows it inside a shared
// mapping of the value-log file badger says holds the piece; anything else is
// skipped, counted and logged once.
// It also starts the kernel's writeback of the value-log file being written
// every 4 MiB (sync_file_range), so that badger's msync when it closes the
// file has little left to write: that msync holds the file's lock, stalling
// Puts and reads of that file meanwhile. And it preallocates each new
// value-log file (fallocate): badger creates them sparse, and a first store
// to each page of a sparse mapping faults into the file system to allocate
// a block, which made Put three times slower than a plain write. Badger
// reads the newest value-log file whole at Open; the first sweep unmaps it
// again.
//
// # Reads
//
// A verified piece is read with pread from a descriptor of the value-log
// file that holds it, at the offset badger's value pointer gives (direct.go
// explains how we get it and why that is safe across value-log GC). Copying
// out of the mapping instead faulted the pages into the process (RSS for the
// pager to unmap again) and copied through 4 KiB page-table entries; pread
// copies through the kernel's own mapping of the page cache. The speed of
// that copy also depends on how the page cache holds the file: in large
// folios, as write(2) leaves a plain file, or page by page, as badger's
// write faults leave its value log. So when badger starts a value-log file,
// the Put that notices (one stat per Put) prefills the page cache for it in
// 2 MiB folios (prefill in pager.go; no disk I/O, the blocks are
// preallocated and unwritten, but the kernel zeroes each page), on a
// goroutine of its own, 32 MiB ahead of what was put into the file and
// further as Puts come near (prefillAhead): a whole file prefilled at
// once zeroed up to 128 MiB that a download might never write. What the kernel
// had read around badger's first write fault by then (read_ahead_kb of the
// disk: 128 KiB by default, 8 MiB on some virtual disks) is redone once the
// file is full (refolio: written back, dropped from the page cache, read
// again in large folios; a disk read of that much per file).
// BenchmarkReadPiece against BenchmarkPlainFileReadPiece measures the
// result; BenchmarkReadPieceMapping, the copy out of the mapping.
//
// # Crashes
//
// After SIGKILL nothing committed is lost: the memtable log and the value
// log are written through shared mappings, so the page cache holds them
// whatever happens to the process. Badger replays the memtable log at Open,
// dropping a transaction whose end is missing; at most the pieces being
// written are lost (TestCrashSIGKILL kills a writer six times at random
// points and checks every piece). Pieces chosen for eviction whose delete had
// not committed survive, so the store can reopen a few pieces over capacity;
// the next Put evicts them. After a power loss (SyncWrites is off),
// recent pieces may be lost and a value-log tail may be torn: badger
// truncates the newest value-log file at its first bad entry, and our
// checks catch the rest.
//
// Every piece is verified against its checksum on its first read in each
// process (the whole piece, even for a 4 KiB read; about 0.1 ms per MiB),
// whether the last stop was clean or not: a clean-shutdown marker would save
// one hash per piece per run and miss damage done while stopped. A piece
// that fails (checksum, or size: badger logs value-log read errors and hands
// back an empty value) is deleted, OnEvict is called, and ReadAt returns an
// error wrapping ErrNotFound, so the engine downloads it again. Pieces
// written in this process are trusted. A crash between creating a log file
// and sizing it leaves an empty file that badger refuses (badger#2207); Open
// removes empty logs first.
//
// # Errors
//
// A data directory that cannot be created or written, one locked by another
// process ("data directory ... is in use by another swarmfs process (pid
// N)", ErrLocked), a full cache (ErrFull: everything pinned), a piece larger
// than the cache takes (ErrTooLarge, which wraps ErrFull; MaxPiece says the
// limit) and a nearly full disk (ErrDiskFull, which wraps ErrFull) each give
// a clear error. The disk check matters: badger writes through mmap, and a
// store to a mapped page of a sparse file on a full disk raises SIGBUS,
// killing the process; so Put and PutMeta keep a reserve of one value-log
// file plus 64 MiB free and refuse beyond it, before evicting anything. The
// recency flush waits too. A store that exists opens on a disk inside its
// reserve (one filled by an earlier run, or by anything else) and serves
// what it holds, refusing new pieces until space frees; only below
// minOpenFree (16 MiB: what badger's Open writes) does Open refuse. Room and
// Free tell a caller whether a Put could succeed now, without trying it:
// the engine retries a refused piece only when one says so, or after a
// back-off, never in a loop.
//
// # Goroutines and lock order
//
// Open starts two goroutines that Close stops and waits for: maintenance
// (recency flush, compaction and value-log GC; see maint.go) and the pager
// (writeback and unmapping; see pager.go). Value-log GC runs a third,
// its sweeper, for as long as each RunValueLogGC call (gcsweep.go). Locks,
// in the order they are taken:
//
//	life     RWMutex: keeps db open under running calls; Close takes it exclusively
//	gcMu     Mutex: one collect at a time (maintenance; tests)
//	flushMu  RWMutex: the recency flush holds it exclusively; deletions and
//	         replacing Puts hold it shared, so a flush never writes a record
//	         back after its piece was deleted or rewritten
//	raceWrites  RWMutex, -race builds only: keeps our writes out of
//	         value-log GC, whose start races benignly with badger's writer
//	         (see runValueLogGC)
//	sweepMu  Mutex: one sweep of value-log mappings at a time (the pager,
//	         or a Put that wrote the pages due for one; see pager.go)
//	mu       Mutex: the index, LRU list, pins, dirty and mapped lists
//	diskGuard.mu  leaf
//
// mu is never held across badger I/O, a callback or a channel send. Put of a
// piece that is being written or evicted waits (on cond) for that to finish.
//
// # Pitfalls
//
//   - A badger value is valid only inside item.Value's callback; ReadAt
//     copies inside it, and dropPages may only run inside it (badger holds
//     the file's lock then, so the mapping cannot move).
//   - Badger swallows value-log read errors and returns an empty value:
//     always check the size. A read racing a GC that moved the piece sees
//     this too, so ReadAt retries before declaring a piece broken.
//   - OnEvict callbacks run inside Put (or ReadAt): they must not call Close.
//   - Size includes pieces being written. Metainfo is not counted.
//   - DropTorrent does not call OnEvict, and a Put still running when it
//     starts may leave that piece behind.
//   - InMemory is backed by a temporary directory removed at Close: badger's
//     own in-memory mode refuses values over 1 MiB.
package cache
