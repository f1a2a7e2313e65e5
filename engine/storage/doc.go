// Package storage holds verified piece data for the engine.
//
// A Provider opens one Torrent store per torrent. The engine writes a piece only
// after its SHA-1 matched, and reads only pieces it knows are stored, so a store
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
package storage
