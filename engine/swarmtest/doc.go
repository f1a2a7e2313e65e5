// Package swarmtest starts real BitTorrent peers and trackers on loopback for
// other packages' tests and benchmarks: libtorrent sessions (Debian's
// python3-libtorrent, libtorrent-rasterbar 2.0), transmission-daemon 3.00,
// aria2c 1.36, rtorrent 0.9.8 and opentracker. It imports no
// other swarmfs package but engine/bencode, so swarmfs's own engine is tested
// against independent implementations, never against itself.
//
// # What each helper starts
//
//   - StartTracker: one opentracker process on 127.0.0.1, HTTP and UDP
//     announces on the same free port (Tracker.HTTP, Tracker.UDP).
//     Tracker.Peers tells what the tracker hands out for a torrent.
//   - StartGoTracker: an HTTP tracker in the test's process on 127.0.0.1
//     and [::1] (one port), for IPv6: it answers with "peers6" (BEP 7) and
//     honours "ipv6=", which Debian's opentracker (IPv4-only) cannot.
//   - StartLibtorrent: one /usr/bin/python3 process running the embedded
//     ltpeer.py, which holds one libtorrent session and answers JSON lines
//     on stdin/stdout. It prints a ready line only after libtorrent reports
//     its TCP and UDP listen sockets, so the peer is reachable on return.
//   - StartTransmission: one transmission-daemon with its own
//     configuration folder (settings.json: peer port and RPC on its
//     address, no DHT, LPD, PEX or port mapping, no limits, the
//     encryption asked; uTP beside TCP with TROptions.UTP, its libutp flags
//     such peers "T"), driven over its RPC (HTTP, with the
//     X-Transmission-Session-Id exchange). It returns once the RPC answers
//     and the peer port accepts connections.
//   - StartAria2: one aria2c process for one torrent (seeding after a hash
//     check, or downloading and then stopping), bound to its address with
//     --interface, trackers ignored, driven over JSON-RPC on 127.0.0.1.
//   - StartRtorrent: one rtorrent process (rakshasa's libtorrent) for one
//     torrent, a daemon with its own session folder, bound to its address,
//     no DHT or PEX, driven over XML-RPC on a Unix socket (SCGI). It is
//     handed a copy of the torrent that announces to a closed port:
//     rtorrent refuses a torrent without a tracker.
//   - MakeTorrent: a short python3 process using libtorrent's
//     create_torrent, independent of engine/metainfo: v1, or with
//     MakeTorrentFormat v2-only or hybrid (BEP 52). LT names every torrent
//     as swarmfs does: by its v1 info-hash, or for a v2-only torrent by the
//     v2 one truncated to 20 bytes (MagnetV2 makes its btmh magnet).
//   - StartDelayRelay, NewDelayRelay: no process; a TCP relay that adds a
//     fixed latency to each direction of every connection it forwards (in
//     front of a seeder, for the latency the kernel's missing sch_netem
//     would give), keeping the stream's throughput: chunks are stamped
//     when read and written when due, not slept on one by one.
//   - StartStaticTracker: no process; an HTTP tracker on 127.0.0.1 that
//     answers every announce with the same compact peers (relays a real
//     tracker would not know of) and records no one.
//   - WriteFiles, StandardFiles, InteropFiles, VerifyTree, CompareSHA256,
//     FileSpec.ReadAt: no process; deterministic test data (content
//     addressable by offset), a cmp -r style comparison that names the
//     first differing byte, and one by SHA-256 of every file.
//
// # Addresses and ports
//
// Everything listens on and talks to 127.0.0.0/8 and ::1 only (a
// libtorrent peer on "::1", or on an IPv4 address plus "::1" with
// LTOptions.AlsoIP, is reachable over IPv6), or to addresses a test put
// on the loopback of a network namespace of its own (IsLocal: ::1 is a
// single address, and peers telling each other of peers must not share
// it); StartLibtorrent, StartAria2, ConnectPeer and DHT bootstrap refuse
// other addresses. Give each peer its
// own address (127.0.0.2, 127.0.0.3, ...: all of 127/8 works on Linux
// loopback without setup) so peers are told apart by IP as on a real
// network; libtorrent also connects out from that address
// (outgoing_interfaces), so a tracker or an incoming connection sees it.
// Ports are chosen free at start (the kernel picks libtorrent's; FreePort
// picks opentracker's, with a retry if it is taken before the bind).
// Trackers record the address an announce comes from, not an ip= parameter.
//
// # libtorrent settings (ltpeer.py)
//
// LSD, UPnP, NAT-PMP and uTP are off: peers meet only through what the test
// sets up, over TCP, which swarmfs speaks. LTOptions.UTPOnly turns that
// around (uTP in and out, no TCP); LTStatus.UTPPeers tells which peers came
// over uTP. allow_multiple_connections_per_ip
// is on, torrents are added neither auto-managed nor paused (they start at
// once), announces go to every tracker of every tier, reconnects and
// connection attempts are fast. The session tick is 100 ms instead of 500:
// it paces both connection attempts (a ConnectPeer waited up to a tick) and
// rate-limit quota. A requested port is exact (no "next port" retries, no
// fallback to an ephemeral one). MSE/PE encryption keeps libtorrent's
// defaults (MSE tried first on outgoing connections, both kinds accepted)
// unless LTOptions says otherwise: Encryption: EncryptionRequired (or
// EncPolicy "forced" with EncLevel "rc4") makes a peer that requires
// encryption, as the transmission and aria2 drivers do. Rate limits are real
// on loopback: by default libtorrent exempts local networks
// (ignore_limits_on_local_network, and the "local" peer class for 127/8);
// both are switched off. With DHT,
// the protections that assume the real internet (one node per IP, node-ID
// checks, verified IDs, the "dark internet" filter) are off so a loopback
// DHT forms; the bootstrap nodes are added as ordinary nodes (libtorrent
// keeps "router" nodes out of its routing table) and the default router
// dht.libtorrent.org is never contacted. Torrents announce to the DHT every
// 5 s and on DHTAnnounce.
//
// # Cleanup guarantees
//
// Every process is registered with tb.Cleanup: a libtorrent peer has its
// stdin closed (it exits at once, without tracker "stopped" announces) and
// is killed after 2 s; transmission and aria2 get SIGTERM and are killed
// after 5 s and 3 s; opentracker is killed. Both are then waited for, so
// no process outlives its test. If the test binary itself dies, the
// children get SIGKILL from the kernel (Pdeathsig; started from a goroutine
// locked to its OS thread, since Linux ties that signal to the forking
// thread). When the test failed, each process's stderr (for libtorrent: every
// alert, timestamped) is written to the test log. SWARMTEST_VERBOSE=1
// also streams it live to stderr.
//
// # Pitfalls
//
//   - The python3 first on PATH may be a pyenv one without libtorrent:
//     swarmtest always runs /usr/bin/python3 (the Python constant).
//   - Debian's opentracker only serves whitelisted info-hashes: pass them
//     to StartTracker or call Tracker.Allow before peers announce. An
//     announce for any other hash gets "Requested download is not
//     authorized", a scrape gets an empty answer. Allow rewrites the
//     whitelist and sends SIGHUP (opentracker rereads it in a thread) and
//     returns once an announce for the hash succeeds.
//   - opentracker refuses to run as root, so as root it is started as
//     nobody (the switch happens before exec: letting opentracker setuid
//     itself, with -u, would clear the parent-death signal), and its
//     whitelist lives in a world-readable folder under os.TempDir, not in
//     tb.TempDir (which nobody cannot enter).
//   - libtorrent's Python binding 2.0.8 cannot call session.dht_announce
//     (its flags type is not exposed): DHTAnnounce uses the torrent's
//     force_dht_announce, or plain KRPC for another port.
//   - Tracker.Peers and Allow announce a placeholder peer 127.0.0.1:1 and
//     withdraw it at once; a peer announcing at that instant may be told of
//     it (a connection to port 1 is refused at once).
//   - libtorrent's save folder is the folder that holds the torrent's top
//     folder or single file, not that folder itself.
//   - A finished libtorrent leecher drops its connection to the seeder (both
//     are seeds then): read Status.Peers while transferring, not after.
//   - Tools missing: RequireTools skips, or fails when CI=true, so CI never
//     passes by skipping. `make deps` installs them.
//   - transmission never dials a peer on 127.0.0.0/8 or ::1 (a "martian"
//     to it), whatever a tracker or PEX says, nor keeps such a DHT node:
//     the other side must connect to Transmission.Addr, or the test runs
//     in a network namespace with other addresses on its loopback. It decides both its unchokes and its own interest
//     every 10 s, so a transfer to or from it may start 10 s late. It
//     serves requests in batches every 500 ms (a peer's pipeline must
//     outgrow that). It renames files Windows reserves ("nul.txt" becomes
//     "nul_.txt") on every system and then cannot seed them: StandardFiles
//     is not for it, InteropFiles is. It creates no empty files
//     (CompareSHA256 with emptyOptional).
//   - aria2 cannot be told of a peer: connect to Aria2.Addr. Its ut_pex
//     names only peers it dialled or whose listen port their extension
//     handshake gave (libtorrent on an IPv6 address without an external
//     one gives none), and no peer on the receiver's own address. It sends a
//     BITFIELD in the middle of a connection, after a run of HAVEs. Its
//     BitTorrent port opens only once its files are checked or allocated
//     (WaitSeeding, WaitListening). With RPC on it does not exit when the
//     download completes; cleanup stops it.
//
// Methods that take no testing.TB fail the test given at start, from the
// calling goroutine; call them from that test's goroutine, as t.Fatal
// requires (a peer started in a parent test and driven from subtests
// would fail the parent: start peers in the test that uses them, or use the
// methods that take a tb).
package swarmtest
