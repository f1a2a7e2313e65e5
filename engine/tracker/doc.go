// Package tracker finds peers through BitTorrent trackers: HTTP trackers
// (BEP 3, compact peers of BEP 23, IPv6 peers of BEP 7) and UDP trackers
// (BEP 15, URL data of BEP 41), and keeps a torrent announced to its tiers of
// trackers (BEP 12).
//
// # Concepts
//
// Announce is one request and its answer. It dispatches on the URL scheme
// (http, https, udp; anything else wraps ErrUnsupportedScheme). A tracker that
// refuses ("failure reason" over HTTP, the error action over UDP) yields an
// error wrapping ErrFailure whose text carries the tracker's reason.
//
// An Announcer owns one torrent's announcing: Run sends started, then a
// regular announce every interval, completed once when Completed is called,
// an early announce when AnnounceNow asks (never sooner than the tracker's
// min interval), and stopped to every tracker that accepted started when its
// context ends. Only Run (and the stopped announces it sends in parallel and
// waits for) does I/O; the other methods set flags under the Announcer's one
// mutex and nudge Run, so they never block on the network. A round tries one
// tracker at a time: a silent tracker costs the round up to 60 s before the
// next URL is tried.
//
// Scrape (scrape.go) asks one tracker for its counts of one torrent
// (seeders, leechers, completed) without announcing: over HTTP at the URL
// BEP 48 derives from the announce URL ("announce" in the last path
// segment becomes "scrape"; other URLs give ErrNoScrape), over UDP with
// BEP 15's action 2, sharing announce's connection IDs, retransmits and
// bounds.
//
// # Tiers
//
// The URLs of each tier are shuffled once, at NewAnnouncer. A round walks the
// tiers in order and each tier's URLs in order until one answers; that URL
// moves to the front of its tier, so the next round starts with it. Every
// round starts again from the first tier, so a better tier that recovers is
// used again. A tracker that has not yet accepted started is sent started
// before any other event, so whichever tracker ends up serving us knows us.
//
// # Back-off
//
// A tracker that fails is not tried again before 15 s, doubling with each
// consecutive failure up to 30 min, each wait jittered by ±25%. A round skips
// trackers in back-off; when every tracker is backing off, Run sleeps until
// the first may be tried. After a success the next round waits the tracker's
// interval (30 min by default), never less than its min interval nor one
// minute, whatever the tracker says: no tracker can drive a hot loop.
//
// # Bounds
//
// An HTTP body is read through a limit of MaxResponseSize (4 MiB) and the
// bencode gate (engine/bencode) before decoding; one HTTP announce takes at
// most 30 s. A UDP datagram is read into a 64 KiB buffer; BEP 15's retransmit
// schedule (15·2ⁿ s) is cut short by the caller's context, and the Announcer
// gives each attempt 60 s. Peers are deduplicated and capped at MaxPeers
// (2000) per response; intervals are capped at MaxInterval; messages from
// trackers are cut to 1 KiB and stripped of control characters. The UDP
// connection-ID cache holds at most 256 trackers, each entry for one minute.
//
// # Pitfalls
//
// Private trackers carry a passkey in the URL's query (and sometimes its
// path): errors and logs show URLs with the query removed. Announce keeps an
// HTTP URL's own query and appends ours with '&'. A UDP tracker reached over
// IPv6 returns 18-byte peers, over IPv4 6-byte ones. AnnounceRequest.LocalIP
// binds an announce only to a tracker address of its own family (a socket
// bound to [::1] cannot reach 127.0.0.1); the other family is dialled from
// any address. AnnounceRequest.IPv6 goes out as BEP 7's "ipv6=" over HTTP
// (never a link-local address); BEP 15 has no room for it.
package tracker
