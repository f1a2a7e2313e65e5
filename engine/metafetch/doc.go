// Package metafetch decides how a magnet's info dictionary is fetched from
// peers (BEP 9, ut_metadata): which peer is asked for which 16 KiB piece,
// what is in flight and for how long, when a copy is complete, and, when a
// copy fails its check, who is to blame.
//
// Like the picker, it is pure decision logic: state in (peers and the size
// they claim, the pieces they send or reject, the outcome of a check),
// requests and verdicts out. It performs no I/O, starts no goroutines, reads
// no clock (every method that needs the time takes it) and imports no other
// swarmfs package. A Fetch is not safe for concurrent use: the torrent's
// loop owns it, sends the requests, hashes and parses the copies.
//
// # Concepts
//
//   - Peer: a connection that sent an extension handshake (SetPeer), named
//     by the caller's PeerID, with its address and the metadata_size it
//     claims (0 when it does not speak ut_metadata).
//   - Size: the claim most peers that can be asked make, within
//     Config.MaxSize; chosen when the fetch starts, and again whenever
//     nobody who claims it can be asked (gone, rejecting, silent).
//   - Piece: 16 KiB of the dictionary (PieceSize; the last may be
//     shorter). A piece is asked of one peer at a time; unanswered for
//     requestTimeout, or rejected, it goes to another, and the peer is
//     passed over for skipFor.
//   - Copy: all pieces received. Assemble hands it to the caller with a
//     Mark (piece, sender, CRC-32) per piece; the caller checks it (SHA-1
//     against the info-hash, parsing, opening storage) and reports back:
//     Failed, Unusable, or, on success, Liars.
//
// # Blame
//
// A failed copy from one sender names that sender (Failure.Culprit). One
// from several strikes them all (Failure.Senders; strikes live with the
// caller, which also counts failed pieces, and Config.Strikes reads them
// back to prefer peers with fewer), and its marks are kept: once a good
// copy arrives, Liars names whoever sent a piece that differs from it.
// After any failure the fetch is single-sourced: each attempt takes every
// piece from one peer (the one with the fewest strikes), so the next
// failure names its culprit; a supplier that goes, rejects or times out
// ends the attempt, and its pieces are never mixed with another's.
//
// # Pitfalls
//
//   - Peers are considered in the order they were added, so ties (equal
//     load, equal strikes, equal votes) go to the earliest: decisions are
//     repeatable, which the tests rely on.
//   - Received keeps the data slice: the caller must hand over a copy it
//     does not reuse (the engine's reader goroutine copies payloads).
//   - While a copy is being checked (BeginCheck until Failed, Unusable or
//     Liars) nothing is asked and data is ignored; a dictionary offered
//     meanwhile (Offer) waits for the verdict.
package metafetch
