// Package httpfs is the HTTP front-end of swarmfs: it serves the files of
// the torrents over HTTP (ranges, so any player can stream and seek), a
// JSON API to list, add and remove torrents, an M3U playlist per torrent,
// Prometheus metrics and a status page for the browser.
//
// It sits beside the FUSE front-end (fs) and, like it, knows nothing of the
// engine: it works against the small interfaces it declares (Host, Torrent,
// Reader), which the command line adapts the session to, and which tests
// implement with in-memory fakes. The only thing it takes from fs is the
// folder-name mapping (fs.FolderName), so a file at MNT/<folder>/<path> is
// at /files/<folder>/<path>.
//
// # Routes
//
//	GET  /                          the status page (embedded, no external assets)
//	GET  /files/                    the torrent folders (HTML, or JSON with Accept: application/json)
//	GET  /files/<folder>/<path>     a file (ranges, If-Range, ETag, Last-Modified) or a folder listing
//	GET  /playlist/<folder>.m3u     the torrent's media files, in path order, as absolute URLs
//	GET  /api/torrents              every torrent: status, files with progress, a piece map with pieces in flight and readers
//	POST /api/torrents              add: a .torrent (application/x-bittorrent) or {"magnet": URI} (application/json)
//	DELETE /api/torrents/<infohash> remove
//	GET  /api/cache                 the cache's use
//	GET  /metrics                   Prometheus text format
//
// # Reads
//
// A GET of a file opens a Reader lazily at its first byte (a HEAD or a
// 304 opens none): the engine sees one stream and its readahead grows as
// the body is sent, as for one open(2) on the mount. When the request
// ends, its connection keeps the Reader for the connection's next request
// of the same file, for ReaderLinger (conns.go; set up by
// ConfigureServer, which NewHTTPServer calls): a player streaming by
// consecutive ranges on a keep-alive connection reads through one Reader
// whose window carries over, not a new one per range. A request for
// another file, the connection's close, or a client that went away
// closes it. Reads pass the request's context, so a client that goes away
// cancels them at once. A media file's head and tail are asked for only
// by a request that starts in its first MediaHead bytes, as a player's
// first request does: a seek near the end does not fetch the head. Reads go through a buffer of
// up to ReadChunk bytes that never crosses a piece boundary nor the end of
// the range being sent, so a small range waits only for the bytes under
// it; each fill is written and flushed to the client at once, so bytes
// already there never wait in net/http's buffers for the next piece.
//
// net/http's ServeContent sends a multi-range reply from a goroutine of its
// own, which may still be inside a Read when the handler returns; the
// reader's Close therefore cancels and waits for reads in flight before it
// closes the engine's Reader.
//
// # Paths
//
// Paths under /files/ are split on the escaped form, so an encoded slash
// (%2F) stays inside one segment and is refused, as are empty segments,
// ".", "..", NUL, a backslash, invalid escapes and over-long segments or
// paths: 400. A path that names nothing is 404. Files are found by their
// sanitised path in the torrent's info (metainfo.File.Path), never on disk,
// so no request can reach a byte outside a torrent.
//
// A torrent added by magnet has no file list until its metadata arrives:
// its folder, its files and its playlist answer 503 with a Retry-After
// and a body that says so ("waiting for metadata"), not a 404, which a
// player or a script would take for good.
//
// # Status
//
// GET /api/torrents places the torrent's activity on its piece map: which
// cells hold pieces in flight, and each open reader (a FUSE handle or an
// HTTP request) with its position and readahead window, from the engine's
// snapshot of the last second. The status page draws them.
//
// # Security
//
// The server trusts loopback clients; CheckListen refuses any other address
// unless Options.Auth or Options.Token is set. State-changing calls (POST,
// DELETE) refuse a request whose Origin is not this server's own, and a
// POST whose Content-Type is not JSON or a torrent: a web page in the
// user's browser can neither add nor remove torrents; and files are served
// with "Content-Security-Policy: sandbox", so an HTML file in a torrent
// runs no script with the server's origin. Bodies are bounded
// (MaxBodyBytes), and so are headers and slow clients (ReadHeaderTimeout,
// MaxHeaderBytes, see NewHTTPServer).
//
// # Concurrency
//
// A Server is safe for concurrent use; it keeps no state of its own but the
// metrics and the Readers connections keep between requests (Close closes
// them). Each file request owns its reader while it runs; no lock is held
// across a call into the Host, a Torrent or a Reader.
package httpfs
