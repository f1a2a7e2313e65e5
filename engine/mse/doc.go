// Package mse speaks Message Stream Encryption (MSE, also called PE,
// protocol encryption), the obfuscation that Vuze, libtorrent,
// transmission, rtorrent, aria2 and qBittorrent put in front of the
// BitTorrent protocol: a Diffie-Hellman key exchange, then RC4 over the
// stream (or, if both sides agree, plaintext after an obfuscated
// handshake). Peers set to require encryption, common where ISPs throttle
// BitTorrent, exchange no byte with a client that does not speak it.
//
// It is a leaf: it imports nothing of swarmfs, wraps any net.Conn, and
// knows nothing of torrents but their info-hashes. The engine decides when
// to call it (see Policy).
//
// # Concepts
//
//   - The initiator (A, who dialled) calls Initiate with the torrent's
//     info-hash (SKEY, the stream key), the crypto methods it offers and an
//     initial payload (IA), normally its BitTorrent handshake.
//   - The responder (B) tells an MSE stream from a plain handshake by its
//     first 20 bytes (Sniff), then calls Accept with an SKeyFunc that finds
//     the torrent among all it serves (SKeys builds one from a list; an
//     engine keeps a map from Req2(infoHash) to its torrents) and the
//     methods it allows.
//   - Both return a *Conn: a net.Conn that encrypts and decrypts with RC4,
//     or passes bytes through when plaintext was selected. On the
//     responder's side it reads the IA first, then the stream, so the
//     BitTorrent handshake is read from it as from a plain connection.
//     Conn.Method says which method was selected, Conn.SKey which torrent.
//   - CryptoMethod is a set of Plaintext and RC4. Policy is the user's
//     --encryption setting: Prefer (the default), Require or Off, and says
//     what to offer, what to allow and whether plain handshakes are fine.
//
// # The protocol in short
//
//	1 A->B: Ya, PadA
//	2 B->A: Yb, PadB
//	3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//	        ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//	4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(stream)
//	5 A->B: ENCRYPT2(stream)
//
// Ya and Yb are G^X mod P for the 768-bit prime P and G = 2, with 160-bit
// random private keys X, sent as 96 big-endian bytes; S = Yb^Xa = Ya^Xb is
// the shared secret, also as 96 bytes. HASH is SHA-1 over the
// concatenation. ENCRYPT is RC4 keyed with HASH('keyA', S, SKEY) for what
// A sends and HASH('keyB', S, SKEY) for what B sends, the first 1024 bytes
// of each keystream discarded. VC is 8 zero bytes. crypto_provide and
// crypto_select are 32-bit big-endian bit sets (0x01 plaintext, 0x02
// RC4); the select has exactly one bit, one that was provided. ENCRYPT2 is
// the selected method, continuing the same RC4 streams. Lengths are 16-bit
// big-endian. Pads are random, 0 to 512 bytes, PadA and PadB in the clear
// (the public keys and pads look like noise: there is no fixed byte to
// match), PadC and PadD encrypted.
//
// Neither side knows how long the other's clear pad is, so each finds
// where the next part starts by a marker: B searches for HASH('req1', S)
// starting within 512 bytes after Ya (so it ends within 532 bytes of Ya's
// end, 628 of the stream's start); A computes ENCRYPT(VC), B's first 8
// keystream bytes, and searches for it starting within 512 bytes after
// Yb (within 520 bytes of Yb's end, 616 of the stream's start). Past those
// bounds the handshake fails with ErrSyncNotFound. B then finds SKEY from
// HASH('req2', SKEY): it computes HASH('req3', S) and xors.
//
// # Which method under Prefer, and why
//
// An outgoing connection under Prefer starts with an MSE handshake that
// offers both RC4 and plaintext, never with a plain handshake. A peer set
// to require encryption refuses a plain handshake (and then drops the
// connection without a word), while an MSE handshake reaches both kinds:
// every mainstream client accepts incoming MSE by default (libtorrent's
// in_enc_policy "enabled", transmission's "prefer", aria2, qBittorrent),
// and since the offer holds both methods, a peer that allows only
// plaintext after the handshake is reached too. Only clients that
// predate 2006, or users who disabled encryption, refuse MSE: Initiate
// then fails with ErrNotMSE (the peer hung up before sending its key),
// and the engine retries once on a new connection with a plain handshake,
// remembering the peer as plain. libtorrent does the same under its
// default policy. ErrTryAgain asks for another MSE attempt on a new
// connection first (see Pitfalls). The cost of MSE first is one extra round trip and two
// modular exponentiations per connection (see Cost).
//
// As responder under Prefer, Accept selects RC4 whenever the initiator
// offers it: obfuscation is why a peer starts MSE at all, and a DPI box
// that sees the plain message stream after a plaintext-selecting handshake
// throttles it like any other BitTorrent flow; transmission's "prefer
// encryption" selects RC4 too. (libtorrent and aria2, by default, select
// plaintext when offered both: libtorrent's prefer_rc4 is off.) See Cost
// for what RC4 costs.
//
// Under Require, Initiate offers RC4 only and Accept allows RC4 only;
// incoming plain handshakes are refused (the caller does that after
// Sniff). Under Off, the engine does not call this package: plain
// handshakes only, an incoming MSE stream fails the protocol string.
//
// # Bounds and deadlines
//
// The handshake reads through one fixed 2 KiB buffer; nothing is sized
// by what the peer sends. Each pad length is checked against 512 before it
// is read, markers are searched for within the spec's bounds only, and
// the IA (up to 64 KiB by its 16-bit length) is not buffered at all: the
// Conn decrypts it with the stream, so no limit below the wire's is
// needed. Reads take what the connection has and never wait for more than
// the next step needs, so a peer that sends short padding and waits is
// not waited for. Public keys outside [2, P-2] are refused (they force a
// known secret). Every step runs under the context's deadline, applied to
// the connection (DefaultTimeout when the context has none); cancelling
// the context aborts blocked reads and writes. The deadline is cleared on
// success. On failure the caller closes the connection.
//
// # Concurrency
//
// Initiate, Accept and Sniff run on the caller's goroutine. A Conn is safe
// for concurrent use; one reader and one writer goroutine (the engine's
// peer loop) never wait for each other. Each direction's lock is held
// across the underlying Read or Write, as in crypto/tls: the cipher's
// position has to follow the stream's, so two writes cannot interleave.
// SKeyFunc is called on the handshake's goroutine and must be safe for
// concurrent use if several handshakes run at once.
//
// # Cost
//
// Measured with `go test -run '^$' -bench . ./engine/mse` on the shared
// 2-core development VM (medians of 5; other jobs were running):
//
//	BenchmarkDH          ~0.21 ms  one side's key pair and secret (2 exponentiations)
//	BenchmarkHandshake   ~0.75 ms  a whole handshake, both sides in one process
//	BenchmarkKeystream   ~400 MB/s RC4 over 16 KiB blocks, one core, one direction
//	BenchmarkTransfer    raw TCP 0.9-2.4 GB/s, plaintext Conn the same,
//	                     RC4 Conn 110-180 MB/s (encrypt and decrypt sharing the cores)
//
// The key exchange is negligible next to the network round trips a
// handshake waits for, so math/big is kept. RC4 (crypto/rc4, pure Go, a
// byte-serial algorithm) costs about 2.5 ns per byte at each end: a
// download at 140 MB/s spends about a third of a core decrypting. That is
// the price of Require, and of Prefer with a peer that selects RC4;
// libtorrent and aria2 select plaintext by default when offered both.
//
// # Pitfalls
//
//   - Ya, Yb and S are always 96 bytes: a value with leading zero bytes
//     is padded, never trimmed. Forgetting it breaks one handshake in 256.
//   - The IA is RC4-encrypted even when plaintext is selected: the stream
//     switches to the selected method after the IA (responder reading)
//     and after PadD (initiator reading, responder writing).
//   - A failed MSE handshake leaves the connection unusable for a plain
//     one: a retry needs a new connection.
//   - After a failed Write (a deadline included) an RC4 Conn refuses
//     further writes: the keystream has moved past bytes the peer never
//     received. Reads may be retried after a read deadline.
//   - Bytes the handshake read past its end are returned by the Conn's
//     first Reads: never read the underlying connection (NetConn) directly;
//     use it for socket options only. Code that type-asserts *net.TCPConn
//     on the connection it reads from must be given NetConn, or wrap the
//     TCP connection before handing it to Initiate or Accept.
//   - libtorrent (2.0.8 here) as responder hashes HASH('req3', S) over S
//     without its leading zero bytes (followed by whatever was in its
//     buffer), so when S < 2^760 it finds no torrent and hangs up after
//     step 3: 1 handshake in 256. Initiate reports that case as
//     ErrTryAgain (S began with a zero byte and the responder hung up); a
//     new connection has new keys. As initiator libtorrent pads S
//     correctly: Accept has no such failure (600 handshakes in a row).
//   - libtorrent and aria2 select plaintext when offered both: an
//     initiator that wants RC4 from them must offer RC4 alone.
//   - This is obfuscation, not security: 768-bit DH without
//     authentication, RC4, and math/big's exponentiation is not
//     constant-time (harmless for ephemeral keys here).
//
// # Tests
//
// Initiate against Accept for every pair of method sets, with and
// without IA, over net.Pipe and TCP; each pad at 512 and at 513 bytes;
// unknown info-hashes, garbage, plain handshakes, plain-only peers, bad
// public keys; a stalled peer at each step against a deadline and against
// cancellation. TestInteropLibtorrentInitiate and
// TestInteropLibtorrentAccept run real libtorrent 2.0 peers
// (engine/swarmtest) with encryption forced, plaintext-only, default and
// disabled, in both directions, and download a block through the Conn;
// TestInteropLibtorrentShortSecret shows libtorrent's short-secret bug
// (ErrTryAgain); TestInteropAria2Initiate dials aria2 seeders. They fail
// when CI=true and a client is missing. FuzzAccept and
// FuzzInitiate feed each side arbitrary bytes as the peer's stream; their
// seeds under testdata/fuzz are recorded real handshakes against the fuzz
// targets' fixed keys, so the fuzzer starts past the key exchange
// (`go test -run TestFuzzCorpus -update-corpus` rewrites them).
package mse
