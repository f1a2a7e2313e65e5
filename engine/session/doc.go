// Package session owns the running torrents of a swarmfs process and what
// the piece cache remembers of them. Every front-end (the FUSE filesystem,
// the control socket, the HTTP server) is handed the one Session and goes
// through it to add, remove, find and describe torrents.
//
// # Place in the tree
//
// The session sits under engine/ because it is the engine's owner, not one
// of its front-ends: it imports engine, cache and engine/metainfo, and
// nothing below it imports it. Front-ends do not import it either: fs
// declares the small interfaces it needs (fs.Host, fs.Torrent, fs.Reader)
// and cmd/swarmfs adapts a Session to them, so the imports stay one-way
// (cmd → fs; cmd → session → engine → cache). The control API's JSON types
// (TorrentStatus, CacheStatus) and its HTTP handler (Session.Handler) live
// here so that the control socket and the HTTP server serve the same API.
//
// The session reaches the engine and the cache through interfaces it
// declares (Engine, Handle, Store); NewEngine adapts an *engine.Client and
// *cache.Cache is a Store as it is. Tests use hand-written fakes: no
// network, no FUSE.
//
// # Who owns what
//
// Session.mu guards the torrent map, the adds in progress and the pending
// drops. It is never held across a call into the engine or the store, nor
// across a callback. The session's goroutines are one per magnet waiting
// for its metadata (awaitInfo; then, for a v2 torrent without piece
// layers, for the layers: keepLayers), one per removal in progress (drop) and the
// peer keeper (keepPeersLoop); Close waits for all of them. The caller owns the engine client and the cache:
// close them after the session.
//
// # What the cache remembers
//
// For each torrent the cache keeps its .torrent bytes or, for a magnet whose
// metadata has not arrived, the magnet link, replaced by the metainfo once
// it arrives, and again once the engine has fetched a v2 torrent's piece
// layers (so a restart can check pieces without asking peers for them;
// Parse checks each against its pieces root); Restore adds them all back
// at the next start. A removal always
// wins over a write in flight: a write registers with its torrent (under mu,
// and only while the torrent is in the map), and the drop waits for those
// writes before it drops the torrent's record.
//
// Beside the record, the cache keeps each torrent's best peers (warm.go):
// those that sent it the most data, then those reached most recently, as
// the engine's Torrent.GoodPeers ranks them, refreshed every 30 s by the
// peer keeper goroutine and once more by Close (the engine must still run
// then: close it after the session). When a torrent is added again, by
// Restore or an Add of a torrent the cache knows, they are handed to the
// engine at once, so a remount dials the peers that served it before the
// tracker or the DHT answers, or without them (a tracker down). The
// engine and the store offer this through optional interfaces
// (peerKeeper, peerStore): fakes without them get no warm start.
//
// Once a torrent's info is known (and 200 ms more, for the reads that come
// with the mount), a goroutine fetches the head and tail of the files
// Config.IndexFile picks (the front-ends' media files, whose containers
// keep their indexes there), one at a time, within Config.IndexBudget
// (indexes.go): it opens each as a media reader and waits with the
// engine's Reader.AwaitHeadTail, which asks for nothing a program's reads
// would wait behind, then closes it.
//
// # Removal
//
// Remove takes the torrent out of the map at once and returns: the folder
// is gone from every front-end's next listing. Stopping it in the engine (a
// tracker's "stopped" announce may take seconds) and dropping its cached
// pieces happen on the drop goroutine. Adding the same info-hash again while
// its drop is pending waits for the drop to end first: the engine cannot
// hold the old and the new torrent at once, and the drop would delete the
// new torrent's record.
//
// # Pitfalls
//
// Front-ends that change the set of torrents refresh their own view; a
// change made through one front-end (the control socket) is announced to
// the others by the callback given to Handler, and a magnet's metadata
// arriving by Config.OnInfo. Neither is called with a lock held, but a
// front-end must not call back into its own request handling from them
// synchronously (fs.Server.Refresh is safe from anywhere).
package session
