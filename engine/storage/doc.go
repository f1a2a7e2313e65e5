// Package storage holds verified piece data for the engine.
//
// A Provider opens one Torrent store per torrent. The engine writes a piece only
// after its hash matched (SHA-1, or for v2 its file's Merkle tree), and reads only pieces it knows are stored, so a store
// never has to judge data itself. Open reports which pieces are already present
// and good: the file store hashes what it finds on disk (seeding existing data),
// the cache store trusts its own checksummed index.
//
// Three implementations:
//   - File: the torrent's files in a folder, like any client's download folder.
//   - Memory: a map of pieces, for tests.
//   - Cache: the badger piece cache (package cache), the default for mounts.
//
// Reads happen on FUSE and upload goroutines, writes on the engine's hashing
// goroutines: every implementation is safe for concurrent use.
//
// A store may refuse a piece. ErrNoSpace (a full disk, a piece larger than
// the store takes) lasts until space frees; ErrFull (a cache full of pieces
// readers pinned) passes as readers move on. Either way the engine must not
// fetch the piece again at once: it asks Space.Room (stores with a limit)
// or waits out a back-off. A cache refuses at Open a torrent whose pieces
// it could never hold.
//
// Pitfall: a cache may evict a piece at any moment, also between a
// WritePiece and the engine marking the piece had, and between Open listing
// the pieces and the engine registering with OnEvict. The cache store
// reports the latter when OnEvict is called, and Evicter.Has settles the
// former.
package storage
