// Package webseed fetches a torrent's pieces from HTTP(S) mirrors, the
// url-list web seeds of BEP 19 ("GetRight" style). A web seed has every
// piece, is often the fastest source a torrent has and, for a torrent with
// no seeders, the only one. It is a leaf under engine/: it imports
// engine/metainfo (for Info) and engine/bencode, nothing above them.
//
// # Concepts
//
// A Layout is built once per torrent (NewLayout) from its metainfo.Info and
// the info dictionary's bytes, and shared by its seeds. A Seed is one
// url-list URL of that torrent (New). Seed.FetchPieces fetches a run of
// whole pieces, [first, first+count), reading the body straight into the
// caller's buffer for each piece (no copy in between), tells the caller of
// each piece's bytes as they arrive (so it can hash them on the way), and
// hands each piece to a callback, in order, as soon as its bytes are in: one
// request fills a reader's window, not one 16 KiB block at a time.
// Seed.Fetch is the same into one buffer for the whole run. The pieces are
// not hash-checked here; the engine checks them like any peer's and reports
// a bad one with Seed.BadPiece.
//
// The seed keeps its own standing, updated by every Fetch: a back-off after
// failures (Ready), files it no longer serves (Has), strikes that drop it
// (Stats.State), and measured rate and time to first byte (Stats, Stats.ETA)
// for the picker to compare it with peers. The HTTP client is shared:
// NewClient makes one for all seeds (keep-alive, MaxConnsPerHost
// connections per host, at most MaxRedirects redirects, dial, TLS and
// response-header timeouts, no transparent compression). Seed.Preconnect
// opens a connection to the seed's server ahead of the first request (a
// HEAD of its first file, whose answer counts for nothing), so that a read
// soon after a torrent starts does not wait for a DNS lookup and the TCP and
// TLS handshakes; the engine calls it when a torrent with pieces to fetch
// starts.
//
// # URLs (BEP 19)
//
//   - A URL ending in "/" is a folder: the torrent's name is appended, and
//     for a multi-file torrent "/" and the file's path.
//   - A single-file torrent's URL that does not end in "/" names the file
//     itself (its own name may differ from the torrent's).
//   - A multi-file torrent's URL without a trailing "/" is treated as if it
//     had one, as libtorrent does.
//   - Each appended name and path component is percent-encoded as one
//     segment (url.PathEscape): a space, '%', '#', '?' or '/' inside a name
//     stays inside it. The URL's own path, query and port are kept as
//     written; its fragment is dropped.
//   - The names are the torrent's own (name.utf-8 / path.utf-8 when present
//     and valid UTF-8, as metainfo chooses), not metainfo's sanitised ones:
//     the mirror's files are named as the torrent was made from them.
//     metainfo.Info keeps only sanitised names, so NewLayout reads the raw
//     ones from the info bytes (and keeps them only for files where they
//     differ). A file with a "", "." or ".." component cannot be put in a
//     URL (servers resolve dot segments, so it would name another file): it
//     is never requested, and Has is false for its pieces.
//
// TestLibtorrentAgrees checks these rules against libtorrent on names with
// spaces, '%', '#', '?', '+', '&', ';' and non-ASCII characters.
//
// # Requests and responses
//
// A run inside one file is one request: "Range: bytes=a-b". A run across
// files is one request per file, up to Config.MaxParallel at a time (and no
// more connections than the client allows per host). Empty files are never
// requested; BEP 47 pad files are filled with zeros, never requested.
//
// Each response is checked before a byte of its body is used
// (checkResponse): a 206 must carry exactly one Content-Range equal to the
// range asked for, with the file's length or "*" as its total, a
// Content-Length (when given) of the range's length, and no
// Content-Encoding. A 200 is the whole file (a server ignoring Range, as
// Python's http.server does): its Content-Length, when given, must be the
// file's; the bytes before the range are read and discarded, and the body
// is then parked at the range's end for the next run in that file to read
// on from (cursor.go), so a file read in order is read from such a server
// once, whatever the offset. Stats.NoRanges tells such a seed; the time
// spent discarding counts in its time to first byte, so the picker weighs
// it fairly against peers. The body is read straight into the caller's
// buffers and never past the range (plus one byte, to catch a body that
// goes on, when the range ends the file); nothing is allocated from a
// length the server sends.
//
// Content-Range is parsed by our own strict parser. missinggo's
// httptoo.ParseBytesContentRange, which the design names for this, panics
// on malformed input (index out of range or panic(err) on "bytes 0-9",
// "bytes x-9/10", "bytes -1-5/10", "bytes 0-9/10 junk") and accepts what the
// grammar does not ("bytes +1-+5/+10", "bytes 9-0/10", "bytes=0-9/10"), so
// it cannot meet a server's header. FuzzContentRange uses it as an oracle
// instead: every header we accept, it must read the same way.
//
// Every wait of a request (connect, headers, each read of the body) is
// bounded by Config.ProgressTimeout (20 s), restarted by every byte that
// arrives: a slow but steady transfer of a large run is never cut, a silent
// server is. The caller's context ends a fetch at once.
//
// # Errors and what the engine should do
//
// Fetch returns an *Error whose Kind says what happened; Fetch has already
// updated the seed's standing accordingly:
//
//   - RetryAfter (503 or 429 with Retry-After in seconds or as an HTTP
//     date, capped at Config.MaxRetryAfter; 429 without one gets the
//     back-off): the seed is not Ready until Error.RetryAfter has passed.
//     Send its pieces to peers meanwhile.
//   - Transient (5xx, 503 without Retry-After, 408, a refused, reset or
//     stalled connection, a TLS failure, a short body): exponential
//     back-off, Config.MinBackoff doubling to Config.MaxBackoff (1 s to
//     5 min); the next success ends it. Re-plan the run.
//   - FileGone (404, 410, 403, 416, or a total length other than the
//     torrent's): that file is disabled on this seed for good; Has turns
//     false for its pieces, and later runs touching it fail at once with
//     ErrFileDisabled. Other files are still served; a seed with no file
//     left is dropped.
//   - Bad (a Content-Range, Content-Length or Content-Encoding other than
//     asked for, a body longer than the range, another status, too many
//     redirects): a strike and a back-off.
//     Strikes also come from BadPiece; Config.MaxStrikes (3) of them drop
//     the seed for good (bad data is never served, but a liar wastes time).
//
// Errors of Kind 0 are not the server's doing and change nothing: the
// context's error, ErrDropped (the seed is finished: forget it), and
// argument errors. The error text shows the URL without its query or user
// info, which may hold a token.
//
// # Concurrency and ownership
//
// A Seed is safe for concurrent use; several Fetch calls may run at once.
// Its one mutex guards the standing and is never held across I/O. A Fetch
// across files runs its requests on goroutines it owns and waits for before
// returning; the piece callback runs on the caller's goroutine. A Layout is
// immutable. A Seed made without Config.Client owns a client and Close
// closes its idle connections; a shared client is its owner's to close.
//
// # Pitfalls
//
//   - Transparent gzip: Go's transport asks for gzip and decodes it unless
//     told not to, and a Range applies to the encoded bytes. NewClient
//     disables compression and requests say "Accept-Encoding: identity"; a
//     client passed in Config.Client should do the same.
//   - A 206 with several ranges comes as multipart/byteranges without a
//     Content-Range; we ask for one range and refuse it.
//   - A 200 with no Content-Length for a range that is not at the file's
//     end is used without knowing the file's size; the hash check is the
//     guard there.
//   - Stats.Rate is per request. A run over many small files is mostly
//     latency; the rate is only sampled from bodies of 16 KiB or more.
//   - Redirects keep the Range header (net/http copies it) and may change
//     host or scheme; the data is hash-checked whatever its path.
//   - http.ProxyFromEnvironment is honoured, except for loopback, which
//     net/http never proxies.
package webseed
