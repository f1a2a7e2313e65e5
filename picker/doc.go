// Package picker decides which blocks swarmfs asks which peer for. It is
// what makes swarmfs a streaming filesystem rather than a downloader: a read
// anywhere in a file is answered as fast as the swarm allows, a video plays
// without stalls, and the rest of the torrent still downloads rarest first.
//
// The package is pure decision logic: state in (pieces we have, what peers
// have and how fast they deliver, where readers read), block requests out.
// It performs no I/O, starts no goroutines, reads no clock (every method
// that needs the time takes it) and imports no other swarmfs package. A
// Picker is not safe for concurrent use: the torrent's loop owns it.
//
// # Concepts
//
//   - Piece and block: a piece is the unit of verification; a block (16 KiB
//     by default, Config.BlockSize) is the unit of request. A piece with at
//     least one block requested is partial until SetHave or PieceFailed.
//   - Peer: a connection, named by the engine's PeerID. The picker knows its
//     pieces (bitfield, HAVE, HAVE ALL), whether it chokes us, its BEP 6
//     allowed-fast set, its outstanding requests, and two statistics
//     measured from BlockReceived: rate (bytes per second of busy time) and
//     latency (request to first byte, minus the transfer of what was queued
//     ahead, sampled only when the pipeline was nearly empty). A peer not
//     measured yet is assumed to be average. A source that delivers whole
//     pieces at once (a web seed) cannot be timed block by block: the
//     engine measures it and tells the picker (SetPeerStats). Seeds are
//     not counted in per-piece availability.
//   - Reader: an open file handle (AddReader). Each read (ReaderRead) is
//     pending until ReaderDone. The reader has a position, a measured read
//     rate and a readahead window that follows the position.
//   - Urgent piece: a missing piece under a pending read. Something is
//     waiting for it right now.
//   - Window: the pieces from the reader's position up to position+window
//     bytes. Each window piece has a deadline: when the reader, at its read
//     rate, will get there.
//   - Head and tail: at open, a media reader (ReaderOptions.Media) asks for
//     the first and last MiB of its file, where containers keep their
//     indexes (an MP4 moov atom at the end makes ffprobe read the tail).
//   - Pins: urgent, window and head/tail pieces. The cache must not evict a
//     pinned piece (Pinned, PinnedPieces, PinVersion).
//
// # Priorities, highest first
//
//  1. Urgent pieces: the first read after an open or a seek before the others
//     (someone stares at a frozen player, while a cp blocked at the download
//     frontier loses little by waiting a moment), then oldest read first. Only
//     peers that deliver a block well within the time the unchoked peers
//     together need for a whole piece (urgentSlow) take urgent blocks, unless
//     no faster peer has the piece: a far 20 KB/s peer would hold the piece
//     back, a rate-capped seeder caught in a pause of its limiter would not.
//     Each peer takes a share of the piece's unrequested blocks computed by
//     water-filling, so that all peers finish their parts at the same moment: a
//     far or busy peer takes fewer. No peer holds more urgent blocks than it
//     delivers in its latency plus urgentHorizon (at least urgentMinHold): the
//     shares know only the peers unchoked at that instant, and right after a
//     mount the first seeder to unchoke would otherwise take a whole piece that
//     the others, a millisecond later, could have shared; the rest goes to
//     whoever comes back first as its blocks arrive. Before a peer takes an
//     urgent block (and when a read makes a piece urgent), its queued requests
//     for background, readahead and lower-ranked urgent pieces, beyond the few
//     probably on the wire already, are withdrawn: the remote peer serves
//     requests in order, and an urgent request must not wait behind a second of
//     other work. While an urgent piece still has unrequested blocks, the peers
//     that have it queue nothing else, so they come back for more as soon as
//     their part arrives. A peer that lacks it goes on with the layers below: a
//     read waiting on a piece no peer has yet (a super-seed shows each host a
//     piece at a time) does not stop the rest of the download.
//  2. Late urgent blocks are requested again from a peer that would deliver
//     sooner than the holder is expected to (a holder past its expected
//     arrival is assumed to take as long again); when the first copy
//     arrives, BlockReceived returns the loser as a cancel. A holder not
//     measured yet is left alone while it delivers: its estimates come
//     from the prior, and a remote peer sends what it has read for us,
//     CANCEL or not.
//  3. Readahead windows of all readers merged by deadline, so two players
//     and a cp share bandwidth by who needs data first, not by who asked
//     first. A peer far slower than the best skips window pieces due before
//     it could deliver them. When a window piece is due before the peer's
//     queue would drain, queued background is withdrawn and little new
//     background is queued behind it. Each window piece is shared by the
//     unchoked peers (spreadCap): taken whole, pieces would complete all
//     at once, each at one peer's rate; shared, they complete one after
//     another in the order the reader needs them.
//  4. Head and tail of media readers, shared the same way; a source set
//     with SetPeerInOrder is not given a head or tail more than
//     inOrderReach bytes past where its stream would stand (it would read
//     every byte before it), unless a read asks for it.
//  5. The background policy: with All, partial pieces first (so few pieces
//     are half done at once), then new pieces rarest first with a seeded
//     random tie-break (for a peer set with SetPeerInOrder, a source that
//     serves best in order, lowest first from the piece given, wrapping);
//     with OnlyWanted, nothing. Endgame: once every
//     missing wanted piece is started and no block is left unrequested, a
//     peer may duplicate a block that it would deliver sooner than its
//     holder (at most endgameHolders copies).
//
// A seed (in a fleet, the origin) is not asked for readahead, head/tail or
// background pieces that an unchoked partial peer about as fast has and
// has room in its queue for: the seed's upload is best spent on pieces
// nobody else can give, and a fleet's hosts reading the same files in the
// same order would otherwise all take the window pieces from the origin.
// Urgent pieces are shared among every peer that has them, seeds too.
//
// # Windows: evidence, size, budget
//
// A window opens only with evidence of sequential reading: two reads and
// 256 KiB read contiguously since the last seek. A media scanner or
// thumbnailer that reads a little of the head and the tail of thousands of
// files never opens one: it gets its urgent pieces and nothing more. Reads
// within 1 MiB behind the position or within the window ahead count as
// sequential (FUSE reads arrive slightly out of order); anything else is a
// seek. The window grows like TCP slow start, at most twice the bytes read
// sequentially, towards a target of the measured read rate times a lead of
// 10 s plus two pieces' download time at the swarm rate (SetRate, or the sum
// of peer rates): a player reading 0.5 MB/s needs far less than cp. A seek
// collapses the window at once: the old window's pieces are unpinned and,
// under OnlyWanted, their queued requests withdrawn. A reader that has
// proven sequential keeps that evidence across seeks and restarts from a
// one-piece window, since a player that seeks goes on playing. So does a
// media reader whose seek lands past its head and tail, where scanners and
// probes stop: a player seeking into a video it has just opened (a
// thumbnailer seeking once costs at most one piece more).
//
// The sum of all windows and head/tail pins is capped by
// Config.MaxWindowBytes (derive it from the cache size). Head/tail takes at
// most a quarter of it, first come first served; when the windows' targets
// exceed the rest, every window is scaled down in proportion. Pieces under
// pending reads are always pinned, even past the cap: they are bounded by
// the reads in flight.
//
// # Driving it (the engine's side)
//
// On connect AddPeer, then PeerBitfield/PeerHaveAll, PeerHave, PeerChoked
// (a new peer chokes us until PeerChoked(id, false)), PeerAllowedFast; on
// disconnect RemovePeer. Whenever a peer has free pipeline slots, Next(id,
// now, free) and send what it returns, then drain Cancels (Next may have
// withdrawn queued requests to make way for urgent ones). On a block, BlockReceived: store the
// block only if useful, send CANCEL for each returned cancel; when a piece
// is complete and verified SetHave, when it fails PieceFailed (then Solo
// if several peers sent it). Urgent says whether a read waits for a piece
// (the engine hashes such a piece as its blocks arrive). A source
// that delivers whole pieces (a web seed) reports each with PieceArrived
// instead, whatever share of it Next had asked of it. On REJECT,
// RequestRejected. Reader operations (AddReader, ReaderRead,
// ReaderDone, RemoveReader) as they happen, then Cancels (send CANCEL for
// each) and Next for every peer: that is what turns a seek into requests
// within the same loop iteration. About once a second, Timeouts (it also
// drains Cancels). Sync cache pins from PinnedPieces when PinVersion
// changed. Interesting says whether to be interested in a peer; under
// OnlyWanted it stays true for interestLinger after the last reader
// activity and after the start, since a peer chokes us when we lose
// interest and unchokes us a round trip after we regain it. When the
// store refuses a verified piece, call neither SetHave nor PieceFailed:
// the piece is then asked of nobody until PieceFailed (when it may be
// tried again). SetBackground pauses the All policy while the cache is
// full and resumes it (then drain Cancels).
//
// # Complexity
//
//   - Next is O(blocks returned) plus, per layer: urgent O(urgent pieces),
//     and O(peers) for a share only while an urgent piece has unrequested
//     blocks; windows O(readers with windows) per piece taken plus a bitset
//     scan that skips 64 pieces per word (pieces here, in flight, or that
//     the peer lacks); background O(open partials) plus the rarity scan.
//   - Rarity is libtorrent's bucketed array: pieces ordered by availability
//     with bucket boundaries, so a HAVE moves a piece by one swap; a piece
//     leaving the candidates costs O(its availability). Seeds are counted
//     apart, so HAVE ALL costs O(1). The scan starts at the rarest bucket
//     and stops at the first piece the peer has; a peer with fewer than 128
//     pieces is scanned through its own bitfield instead.
//   - Pins and urgency are bitsets rebuilt lazily when readers change.
//   - BenchmarkNext: about 1 µs per pick (Next plus the blocks arriving)
//     at 1,000 to 200,000 pieces with 10 or 200 peers.
//
// Memory: per torrent O(pieces) (a few bitsets, availability, rarity
// order); per peer a bitfield, at most maxOutPerPeer outstanding requests,
// maxAllowedFast allowed-fast pieces and a ring of cancelRing recently
// withdrawn requests; per reader at most maxPending pending reads.
//
// # Pitfalls
//
//   - Next may return fewer than max requests, or none, even when blocks
//     are missing: the peer lacks them, is too slow for what is left, or
//     already has about a second of work queued. That is deliberate.
//   - Withdrawn requests (Cancels, Timeouts) are already forgotten when
//     returned. A block that still arrives for one of them is accepted if
//     nobody else has delivered it (the peer's cancelled ring), else it is
//     reported not useful: the engine must not store it.
//   - BlockReceived for a piece already verified, or a block never asked
//     of that peer, is not useful; the engine discards it.
//   - Times must come from one clock; a Picker measures durations between
//     the times it is given, so tests and the simulator use simulated time.
//   - Deterministic: ties break by index or by the seeded rarity order, and
//     results never depend on map iteration order. The simulator relies on
//     it.
//
// # Proof: the swarm simulator
//
// sim_test.go is a deterministic discrete-event simulator (seeded
// randomness, simulated time): remote peers with upload rates, latencies,
// piece sets, growth and churn serve our requests in order and honour
// CANCEL; players read at a bitrate with a buffer and seek; a copier reads
// as fast as it can. It compares strict sequential, plain rarest-first and
// this picker on the same scenarios (fast swarm; slow swarm of 8 peers at
// 1 MB/s with a 4 Mbit/s video seeking every 20 s; one 32 KB/s peer 400 ms
// away; churn; cp; two players and a cp at once) and asserts that ours
// beats both on time to first byte after a seek and on stall time while
// completing within 10% of rarest-first. A fourth row runs ours under
// OnlyWanted. go test runs small scenarios; the full table prints with
//
//	go test -run TestSimulator -v -sim.table ./picker
//	go test -run '^$' -bench SimTable ./picker
//
// sim_fleet_test.go simulates a fleet instead: one origin and many hosts,
// each driven by its own Picker, over links of one capacity (no CPU, no
// latency), with the engine's upload slots and, optionally, its
// super-seeding. It reports each host's completion (p50, p90, p99, max)
// against one host alone and the origin's upload against the dataset, and
// checks the fleet goals (last host within 2x one host alone, p99 <= 1.8x
// p50, origin <= 3x). go test runs 100 hosts; the 1,000 hosts and
// 1 GiB run with
//
//	go test -run '^$' -bench FleetSim -benchtime 1x ./picker
package picker
