// Package engine is swarmfs's BitTorrent client: it owns torrents, their peer
// connections, piece assembly and hash checks, choking and upload, and the
// ways of finding peers and metadata without a .torrent file.
//
// # Who owns what
//
// A Client listens on one port (without Config.ListenAddr: 6881, else the
// first free of 6882-6889, else any; listen.go), hands incoming
// connections to the torrent whose info-hash they name, and shares the
// half-open dial budget, the rate limiters and the hashing workers between
// torrents. With Config.DHT it owns
// a dht.Node (UDP, by default on the TCP port), with Config.LSD an
// lsd.Service; Close closes them after every torrent has stopped. Unless
// Config.NoUTP, it owns a utp.Socket on the UDP port with the TCP port's
// number; the DHT node shares it (dht.NewOn over Socket.Others). A
// listen address without a host (the default) makes all three dual-stack:
// TCP and UDP on [::] take IPv4 too, and the DHT node keeps one routing
// table per family (BEP 32). Trackers are told our IPv6 address (ownIPv6:
// a specific IPv6 listen address, else the host's first global one) with
// BEP 7's ipv6=, and so are peers, in the extension handshake.
//
// Connection setup (handshake.go, transport.go, wiremethod.go): an incoming
// connection, TCP or uTP, is sniffed (mse.Sniff): a plain handshake, or
// mse.Accept looking the torrent up by HASH('req2', info-hash) in the
// Client's req2 map (kept with the torrent map). Config.Encryption says
// which are welcome. An outgoing one tries the transports of
// transportPlan (uTP first for a peer known to speak it) and on each the
// handshakes of dialPlan (under prefer MSE offering RC4 and plaintext,
// then plain when the peer hangs up on MSE; ErrTryAgain retries MSE once);
// the candidate remembers what worked. The log says each step. The
// Client's mutex only guards its torrent map (and req2); it is never held
// across I/O.
//
// Each Torrent has one goroutine, its loop (torrent_loop.go), that owns all of
// its mutable state: the picker, the partial pieces, the peer set, the
// candidates, the metadata download and each connection's protocol state.
// Other goroutines talk to it by posting closures on its event channel
// (Torrent.post); they never touch that state. What readers need without
// the loop (which pieces are verified, counters for statistics) is
// published through atomics, so a FUSE read never waits on peer processing.
// A torrent also owns its tracker announcer, its DHT announcer
// (torrent_dht.go), its dials, its connections' reader and writer
// goroutines, hashing workers and metadata checks: its WaitGroup counts
// them all, and close waits for it.
//
// The loop's work is split by concern: torrent_loop.go (the loop and its
// tick), torrent_conns.go (adopting and removing connections),
// torrent_msgs.go (peer messages), torrent_requests.go (interest,
// pipelines, requests), torrent_pieces.go (assembly, hashing, bans),
// torrent_store.go (evictions and refusals), torrent_meta.go (BEP 9),
// torrent_peers.go (candidates and slots), choke.go, superseed.go
// (BEP 16: a complete torrent with TorrentOptions.SuperSeed says HAVE
// NONE and offers each peer superOffers pieces at a time, the rarest it
// lacks; an offer is replaced once another peer announced it, once the
// peer announced it while some piece is still unshown (the first pass),
// or after superPassOn; a leecher alone for superAlone, or asking for none
// of its offers for superUnwanted, is shown everything), goal.go (seeding
// goals: once TorrentOptions.SeedRatio or SeedTime is met every peer stays
// choked; a complete torrent then retires: trackers hear "stopped", the
// DHT and LSD stop, peers go and new ones are refused), torrent_pex.go,
// uploadonly.go (BEP 21: upload_only in our extension handshake, sent
// again when it changes, once complete or, downloading only for readers,
// idle for uploadOnlyIdle; a peer saying it with nothing we want is
// dropped when we want nothing either, and evicted first for a newcomer),
// torrent_dht.go, torrent_webseed.go (web seeds), torrent_waits.go
// (reads waiting for a piece no source has), torrent_scrape.go (a goroutine scrapes each tracker at
// start and then at its announce interval; Stats.Swarm, NoSeeders,
// Trackers), torrent_stats.go and torrent_v2.go, torrent_v2_blocks.go
// (BEP 52). Two sub-machines are pure packages
// the loop drives: picker (which blocks to ask whom) and metafetch (which
// metadata piece to ask whom, and whom to blame for a bad copy). What the
// loop shares with other goroutines sits in small mutex-guarded types
// (torrent_shared.go).
//
// Each connection has a reader goroutine (decodes messages, copies what must
// outlive the decoder's buffer, posts to the loop; conn_read.go) and a
// writer goroutine (drains the connection's send queue and serves upload
// requests straight from storage; conn_write.go). A connection is closed by
// closing its net.Conn; both goroutines then end and the loop is told once.
// A conn's loop-owned state is grouped by concern: choke (choking and
// interest), has (the peer's pieces), exts (its extension handshake), flow
// (rates, pipeline, usefulness), meta and pex.
//
// Verified pieces: a complete piece goes to the hashing workers; a good piece
// is written to storage by the worker, then the loop marks it had, sends HAVE
// and wakes waiting readers. While the write is under way readers copy the
// piece from memory (Torrent.mem), so a slow store write does not delay
// them. A piece a read waits for (picker.Urgent) is hashed on the loop as
// its blocks arrive in order (hashArrived), and its readers are woken with
// its last block. A bad piece is dropped; its sole contributor is
// banned at once, and when several peers contributed, each one's blocks are
// remembered and compared with the piece once it verifies ("smart ban"),
// and the piece is fetched again from one peer alone (picker.Solo), so a
// liar cannot spoil every copy of a piece that is shared among peers.
//
// The store may evict a piece at any moment (a cache) or refuse one (a full
// disk or cache; torrent_store.go). The eviction hook only records the
// piece and pokes the loop, which checks with the store (Evicter.Has)
// before it clears the have-bit; pieceHashed checks too, since an eviction
// can land between a piece's write and its verdict. A refused piece is
// parked, not fetched again: retried when the store has room or after a
// back-off; its readers fail with ErrNoSpace (ENOSPC) when the disk is
// full, and read it from memory while a cache full of pinned pieces holds
// it out. DownloadAll pauses when the cache is full. Stats tells the user.
//
// # Magnets: a torrent without info
//
// AddMagnet starts a torrent that knows only its info-hash (plus the
// magnet's trackers, x.pe peers and display name). Its info fields (info,
// metainfo, store, have bits, picker) are nil until the metadata arrives;
// they are set once, by the loop, before hasInfo is stored and InfoReady
// closed, and never change after. Methods called from other goroutines
// check hasInfo first (Info, MetaInfo, HavePiece, FileBytesCompleted,
// NewReader, which returns ErrNoInfo); loop code checks t.picker != nil.
//
// Metadata exchange (BEP 9, torrent_meta.go): our extension handshake
// announces ut_metadata (and ut_pex) and, once known, metadata_size. What
// to ask of whom is decided by t.meta, a metafetch.Fetch (pure, like the
// picker); the loop sends, receives and checks. The size to fetch is the
// claim most peers make, within Config.MaxMetadataSize; its 16 KiB pieces
// are spread over the peers that claim it, a few at a time each; a piece
// unanswered for 10 s, or rejected, goes to another peer. A complete copy is checked off the loop (SHA-1
// against the info-hash, ParseInfo, then storage.Provider.Open, which may
// check files); a bad copy bans a sole sender, gives several senders a
// strike and remembers what each sent, and from then on each attempt takes
// every piece from a single peer so the next failure names the liar. When
// the good copy arrives, whoever sent other bytes earlier is banned. We
// serve our own info dictionary to peers that ask, within a quota.
//
// Before the info, a peer's Bitfield, Have, HaveAll are kept raw (a later
// Bitfield, HaveAll or HaveNone replacing what came before; bounded by
// the largest piece count an acceptable info could have) and applied, and
// checked, by adoptInfo once the piece count is known; connected peers are
// then told our metadata_size and, with Have messages, any piece storage
// already held (we said HaveNone, or nothing, at the start). The reader
// goroutine's decoder bound is raised or lowered through conn.maxMsg, which
// it reads between messages.
//
// # BitTorrent v2 (BEP 52)
//
// A torrent is named by a 20-byte hash everywhere (trackers, DHT, the
// handshake, the Client's map, storage): its v1 info-hash, or for a
// v2-only torrent (or a btmh-only magnet) the v2 one truncated. A hybrid
// also answers to its truncated v2 hash (Client.aliases; one added by its
// btih magnet from when its info shows it a hybrid: nameHybrid): it offers the v2
// bit, takes a v2 peer's upgrade (the other hash in its answer) and
// upgrades incoming v2 peers itself, as libtorrent does; such connections
// carry the v2 bit in conn.reserved (peerV2). A magnet's info is checked
// against every hash it names (Magnet.Matches: SHA-1 and SHA-256).
//
// Pieces of a v2-only torrent are checked against their file's Merkle
// tree (metainfo's VerifyPieceV2, in v2State.info, the info plus the piece
// layers fetched so far); a hybrid's with SHA-1. A magnet's info has no
// piece layers: they are fetched with hash requests, each answer proved up
// to the file's pieces root, and a complete piece whose layer is still
// missing waits (counted in hashing, so maxHashBacklog bounds them). Once
// every layer is known MetaInfo carries them and LayersReady is closed,
// so the session can keep them with the torrent's record. We
// answer hash requests from the layers we hold, and requests for a piece's
// block hashes from its data in storage, off the loop. A failed piece with
// several senders is settled by its blocks' leaf hashes, asked of a v2 peer:
// the sender of a bad block is banned at once, and nobody gets a strike.
// Files are piece-aligned in v2 (metainfo adds pad files), so the picker,
// storage and readers need nothing else; libtorrent pads the last file too
// and asks for a whole last piece, whose tail we serve as zeros.
//
// # What disconnects a peer
//
// Only what can do harm: an index or range outside the torrent, a message
// longer than its bound or malformed at the wire level (package peer), a
// bitfield of the wrong size or with spare bits set, floods (ut_metadata
// requests, malformed ut_metadata messages), corrupt data (bans). The
// reason goes to the log (Config.Logf, `-v`). What real clients send that
// BEP 3 and BEP 6 do not quite allow is taken the way libtorrent,
// transmission and aria2 take it: a BITFIELD, HAVE ALL or HAVE NONE after
// the first message is the peer's new set (aria2 sends a BITFIELD after a
// run of HAVEs); HAVE ALL, HAVE NONE and REJECT count without the fast
// extension too; extended messages without BEP 10, under ids we did not
// announce, malformed ut_pex or extended handshakes, are ignored; a second
// extended handshake updates the first; keep-alives are welcome anywhere (quirks_test.go).
//
// # Peer sources
//
// Trackers, the DHT, PEX, LSD, the magnet's x.pe and the caller (Peers,
// AddPeers) all feed one candidate set per torrent (torrent_peers.go),
// deduplicated by address and bounded by maxCandidates. connectMore dials
// those that failed least first, among equals those connected most
// recently, then those reported most recently; a failed dial or a
// connection dropped within 30 s backs off (15 s doubling to 16 min),
// except that a peer never reached that refused a dial (not ready yet:
// started late, still checking) is first retried after 1, 2 and 4 s
// (dialretry.go), and that a peer that took our info dictionary and hung
// up (a magnet client starting the torrent proper as a download of its
// own: aria2, rtorrent, transmission) is dialled again after 0.5 s, once.
// Incoming connections are matched to candidates by the listen port of
// their extension handshake, so we do not dial a peer that dialled us. When
// both sides dial each other at once, both keep the connection opened by
// the side with the lower peer ID.
//
//   - DHT (torrent_dht.go): each torrent that is not private announces at
//     start, then every 15 min (3 min with few peers; from 5 s doubling to
//     5 min while it fails or an incomplete torrent has no peer). The DHT
//     reserved bit is set when the Client runs a node; PORT messages are
//     sent to peers that set it, and a peer's PORT adds its node (pinged,
//     once per connection).
//   - PEX (torrent_pex.go, BEP 11): a message to each ut_pex peer a second
//     after its extension handshake, then at most once a minute, with the
//     connected peers whose listen address we know (added, with flags) and
//     those gone since (dropped), 50 of each at most. Messages from a peer
//     are acted on at most every 20 s; loopback and private addresses are
//     believed only from peers in such ranges.
//   - LSD (engine/lsd, BEP 14): torrents are announced on the local network
//     every 5 minutes; announces heard for our torrents become candidates.
//
// Web seeds (BEP 19, torrent_webseed.go): each url-list URL of a torrent
// added with its .torrent (unless Config.NoWebSeeds) is an
// engine/webseed.Seed, sharing the Client's HTTP client. The loop makes
// it a picker peer that has every piece it serves and never chokes, so
// the picker weighs it by rate and latency like any peer (told by the
// seed, SetPeerStats: a piece's blocks arrive at once and cannot be timed);
// what the picker asks of it is rounded to whole pieces and fetched as
// runs of consecutive pieces (at most 4 MiB, 4 at once per seed) on
// goroutines of the torrent's, each piece posted back to the loop and
// assembled, hashed and stored like a peer's blocks. Its blocks carry a
// pseudo-address in 100::/64, so the smart-ban code blames it like a
// peer: ban turns that into webseed.Seed.BadPiece, whose strikes drop it.
// Back-off, Retry-After and files gone are the webseed package's. Runs
// whose pieces the picker withdraws (a seek) are cut short; when all 4
// run slots are busy and a read waits for a piece the seed has and nobody
// was asked for (picker.UrgentUnasked), the last started run with no
// piece under a pending read is cut, so the slot goes to the read. A
// torrent with pieces to fetch connects to up to 4 of its seeds as it
// starts (webseed.Seed.Preconnect; an origin once a minute per Client), so
// a read soon after does not wait for a lookup and the handshakes.
//
// A read that waits more than 2 s for a piece that no connected peer has
// and no web seed can serve now is named in Stats.Waiting and, once per
// piece, in the log (torrent_waits.go): a torrent whose only source is an
// unreachable web seed must not look like a slow swarm.
//
// Private torrents (BEP 27) use none of the DHT, PEX and LSD. A magnet's
// privacy is unknown until its info arrives: it uses them until then, and
// stops (and sends ut_pex 0) when the info says private.
//
// # What a peer can cost us
//
// Every per-peer queue is bounded. A peer may have ourReqq (1000) requests
// queued with us, the number we advertise; requests beyond it, or sent
// while we choke it (past chokeGrace), are refused, and past 250 such
// refusals the peer is dropped, as libtorrent drops a peer that keeps
// requesting while choked. What waits to be sent is kept encoded, in
// bytes: while over 1 MiB waits, the reader stops reading, so a peer that
// sends faster than it reads is slowed down by TCP instead of growing our
// queue; a write that stalls for writeTimeout (60 s), or a queue over 4
// MiB, drops it. A write round reads at most 256 KiB of piece payload.
//
// Connection slots: Config.MaxConnsPerIP per address (1; 8 on loopback)
// and MaxConnsPerTorrent in all, for dials and incoming connections
// alike. Incoming handshakes in progress are bounded per address and in
// all (128), and a whole handshake has 10 s. reviewPeers notes every
// second whether a connection is useful: blocks flowed either way, or a
// Have or Bitfield made the peer interesting. A newcomer to a full
// torrent, or to an address at its limit, takes the slot of the
// connection useless longest, if that is evictGrace (20 s) at least
// (one with no interest either way first); when slots are scarce (within
// a tenth of the limit) connections useless for uselessTimeout (5 min)
// are dropped. A message must complete within idleTimeout (3 min) of the
// previous one, so bytes trickled in do not keep a connection open, and
// keep-alives keep it open without making it useful. Log lines about
// refused and dropped peers are rate-limited (logLimiter).
//
// # What a download holds in memory
//
// Piece and block buffers, bounded per torrent whatever its size, the
// cache's or the number of peers: requests in flight over all peers
// within maxOutstandingBytes (8 MiB; each peer may keep
// minOwnOutstanding, 16 blocks, beyond it), so the blocks queued for the
// loop and the pieces they open are too; and the pieces waiting to be
// hashed and written within hashLimit (maxHashBytes, 8 MiB, at least 2
// pieces), past which nothing new is asked. Buffers are reused through bounded free
// lists (bufList) that outlive garbage collections. TestInFlightBounded measures the peak
// (held) with sixteen fast peers and a slow store.
//
// # Goroutines and lock order
//
// Every goroutine has an owner that waits for it. The Client's WaitGroup
// counts its accept loop, the incoming handshakes and the DHT bootstrap;
// Close stops every torrent (waiting for each), closes the listener, waits
// for that group, then closes LSD and the DHT node, which wait for their
// own. A Torrent's WaitGroup counts its loop, its tracker and DHT
// announcers, its scraper, its dials, its web seed fetches, its connections' reader and writer goroutines,
// its hashing and storing workers (hashing bounded by the Client's
// hashSem) and its metadata checks; close waits for all of them before it
// closes the store.
//
// The engine's mutexes are all leaves: none is held while another is
// taken, or across I/O, a channel send, a callback or a call into another
// package (the send queue's encoding by package peer, which locks nothing,
// is the one call made under one). They are:
//
//	Client.mu            the torrent map and closed (client.go, client_torrents.go)
//	Client.hsMu          incoming handshakes in progress
//	Client.preconnected  web seed origins connected to ahead (torrent_webseed.go)
//	logLimiter.mu        a rate-limited log's next slot and skipped count
//	Torrent.waiters.mu   the channel readers wait on (torrent_shared.go)
//	Torrent.banned.mu    banned addresses, read by the accept path
//	Torrent.readerQ.mu   readers' operations for the loop
//	Torrent.stats.mu     the latest Stats snapshot
//	Torrent.scrape.mu    each tracker's latest scrape (torrent_scrape.go)
//	Torrent.evictions.mu pieces to re-check with the store
//	Torrent.storeErr.mu  why the store refuses pieces
//	Torrent.mem.mu       pieces held in memory (held while a read copies)
//	Reader.mu            closed (reader.go)
//	conn.out.mu          a connection's send queue (conn_write.go)
//
// Storage and the picker are called with no engine lock held (the picker
// only from the loop). The store's eviction hook runs on whatever
// goroutine evicted, possibly inside the cache's Put: it takes only
// evictions.mu and pokes the loop.
//
// # Pitfalls
//
//   - Messages decoded by package peer alias the decoder's buffer: the reader
//     goroutine copies blocks and payloads before posting them.
//   - The loop must never block on a connection: sends go to a queue drained by
//     the writer goroutine.
//   - Posting to the loop from inside the loop deadlocks when the channel is
//     full; the loop calls its handlers directly instead.
//   - Reading an info field from another goroutine without checking hasInfo
//     first is a data race for a magnet, even where the field is non-nil.
//   - The DHT callbacks (dht.Node.Announce's onPeers) and LSD's OnPeer run on
//     those packages' goroutines: they post to the loop and return.
//   - Outgoing connections are made from the listen address when it is a
//     specific one, so that peers, and PEX, see the address that accepts
//     connections (loopback tests with many clients rely on it); a peer of
//     the other family is dialled from any address (a socket bound to
//     127.0.0.1 cannot reach [::1]), and tracker announces likewise.
//   - Linux delays ACKs up to 40 ms, and a peer with Nagle's algorithm on
//     (libtorrent) then holds the tail of a piece until the ACK: the reader
//     goroutine re-arms TCP_QUICKACK after each read (quickack_linux.go).
//   - Readers wait on the torrent's wake channel, their context and the
//     torrent's end, never in a sleep loop: a have-bit can outlive its
//     piece until the loop has handled the eviction, so a read that finds
//     the piece gone asks the loop to re-check it (recheck) and waits.
//   - The log (Config.Logf) has a line for each connection tried, made,
//     named by its extended handshake, and ended, with the cause
//     (connlog.go); a peer that hangs up on our handshake (one that
//     requires encryption) shows as a failed connect.
//   - A DHT of only two nodes finds nothing: a node's lookups never consult
//     what was announced to itself. Tests use at least three.
package engine
