// Package engine is swarmfs's BitTorrent client: it owns torrents, their peer
// connections, piece assembly and hash checks, choking and upload.
//
// # Who owns what
//
// A Client listens on one port, hands incoming connections to the torrent
// whose info-hash they name, and shares the half-open dial budget, the rate
// limiters and the hashing workers between torrents. The Client's mutex only
// guards its torrent map; it is never held across I/O.
//
// Each Torrent has one goroutine, its loop (torrent_loop.go), that owns all of
// its mutable state: the picker, the partial pieces, the peer set and each
// connection's protocol state. Other goroutines talk to it by posting
// closures on its event channel (Torrent.post); they never touch that state.
// What readers need without the loop (which pieces are verified, counters for
// statistics) is published through atomics, so a FUSE read never waits on peer
// processing.
//
// Each connection has a reader goroutine (decodes messages, copies what must
// outlive the decoder's buffer, posts to the loop) and a writer goroutine
// (drains the connection's send queue and serves upload requests straight
// from storage). A connection is closed by closing its net.Conn; both
// goroutines then end and the loop is told once.
//
// Verified pieces: a complete piece goes to the hashing workers; a good piece
// is written to storage by the worker, then the loop marks it had, sends HAVE
// and wakes waiting readers. A bad piece is dropped; its sole contributor is
// banned at once, and when several peers contributed, each one's blocks are
// remembered and compared with the piece once it verifies ("smart ban").
//
// # Pitfalls
//
//   - Messages decoded by package peer alias the decoder's buffer: the reader
//     goroutine copies blocks and payloads before posting them.
//   - The loop must never block on a connection: sends go to a queue drained by
//     the writer goroutine.
//   - Posting to the loop from inside the loop deadlocks when the channel is
//     full; the loop calls its handlers directly instead.
package engine
