// Package peer is the BitTorrent peer wire protocol codec: the handshake
// (BEP 3), the length-prefixed messages of BEP 3, BEP 5 (port), the fast
// extension (BEP 6) and the hash messages of v2 (BEP 52), and the payloads
// carried by the extension protocol (BEP 10): its handshake, ut_metadata
// (BEP 9) and ut_pex (BEP 11).
//
// It does no networking of its own and keeps no connection state: it turns
// bytes into values and values into bytes. The engine owns connections,
// choking, requests and the meaning of each message.
//
// # Concepts
//
// A connection starts with a Handshake each way (WriteHandshake,
// ReadHandshake; an accepting side reads ReadHandshakeHead first to look the
// info-hash up, answers, then reads ReadPeerID). Its Reserved bits say which
// extensions the peer speaks: Fast, Extended, DHT, V2 (BEP 52: with a
// hybrid torrent's v1 info-hash, an offer to upgrade the connection to v2;
// a v2 connection carries the v2 info-hash truncated to 20 bytes). Messages
// follow, each a
// 4-byte big-endian length and, unless the length is 0 (keep-alive), a
// one-byte MessageType and a payload. A Decoder reads them into a Message;
// AppendMessage and AppendPieceHeader write them.
//
// # Messages
//
//	id    type           length  fields of Message
//	-     keep-alive     0       KeepAlive
//	0     Choke          1       -
//	1     Unchoke        1       -
//	2     Interested     1       -
//	3     NotInterested  1       -
//	4     Have           5       Index
//	5     Bitfield       1+n     Bitfield (check it with CheckBitfield)
//	6     Request        13      Index, Begin, Length
//	7     Piece          9+n     Index, Begin, Block
//	8     Cancel         13      Index, Begin, Length
//	9     Port           3       Port (BEP 5)
//	0x0D  Suggest        5       Index (BEP 6)
//	0x0E  HaveAll        1       - (BEP 6)
//	0x0F  HaveNone       1       - (BEP 6)
//	0x10  Reject         13      Index, Begin, Length (BEP 6)
//	0x11  AllowedFast    5       Index (BEP 6)
//	20    Extended       2+n     ExtendedID, Payload (BEP 10)
//	21    HashRequest    49      PiecesRoot, BaseLayer, Index, Length, ProofLayers (BEP 52)
//	22    Hashes         49+32k  the same and Hashes: Length nodes, then NumUncles uncles
//	23    HashReject     49      as HashRequest
//
// An Extended message with ExtendedID ExtHandshakeID carries an
// ExtendedHandshake (ParseExtendedHandshake); its M maps extension names to
// the ids the peer wants to receive them under. Payloads of ut_metadata and
// ut_pex decode with ParseMetadataMessage and ParsePexMessage.
//
// # Bounds
//
// Every length that comes from a peer is checked before anything is
// allocated for it:
//   - a message longer than the Decoder's maximum (DefaultMaxMessageLength,
//     enough for a piece message with a 128 KiB block) is rejected from its
//     prefix alone; raise the maximum for bitfields of torrents with more
//     than about a million pieces;
//   - unknown ids and fixed-size messages of the wrong length are rejected
//     from their first five bytes;
//   - a message larger than the read buffer is read into a scratch buffer
//     that grows only as its bytes arrive;
//   - a hash message names 1 to MaxHashLength nodes and layers up to
//     MaxHashLayer, and a hashes message's length must equal its header's
//     count of hashes, checked from the header before the hashes are read
//     (HashesLength); whether the request fits the file's tree is the
//     engine's check (engine/merkle's Request.Check). A hashes message of
//     more than about 4000 hashes needs a Decoder maximum above the
//     default;
//   - bencoded payloads pass engine/bencode's scanner first; "m" has at most
//     MaxExtensions entries with ids 0..255; a ut_metadata piece must match
//     total_size, which must not exceed the caller's maximum; ut_pex lists
//     are capped by the caller's maxPeers.
//
// Every such violation is an error wrapping ErrProtocol (and
// ErrMessageTooLarge for oversize messages): the caller disconnects. Nothing
// in this package panics on any input.
//
// # Aliasing
//
// The slices of a Message returned by Decoder.Decode (Bitfield, Block,
// Payload, Hashes) point into the Decoder's buffer and are overwritten by the next
// Decode. Copy a block into the piece buffer, or parse a payload, before
// decoding the next message; never keep one or hand it to another goroutine.
// Values parsed from a payload (MetadataMessage.Data) alias that payload in
// turn. The slices are capped at their length, so an append copies instead
// of clobbering the next message.
//
// If the handshake was read through a bufio.Reader, give that same reader to
// NewDecoder: bytes it buffered past the handshake would otherwise be lost.
// ReadHandshake on an unbuffered connection reads exactly 68 bytes.
//
// # Tests
//
// Every decoder has a fuzz target (FuzzDecode, FuzzDecodeHashes,
// FuzzHandshake, FuzzExtendedHandshake, FuzzMetadataMessage, FuzzPex) whose
// seed corpus is committed under testdata/fuzz, so a plain `go test`
// replays it; `go test -run '^Fuzz' -update-corpus` rewrites the seeds from
// fuzz_test.go and fuzz_v2_test.go (see engine/fuzztest).
// TestInteropLibtorrent runs a libtorrent 2.0 seeder (testdata/lt_seed.py)
// on 127.0.0.1, and TestInteropLibtorrentV2 one of a v2 torrent
// (testdata/lt_seed_v2.py) that it asks for hashes: they are skipped when
// /usr/bin/python3 cannot import libtorrent, unless CI=true.
//
// # Concurrency
//
// A Decoder belongs to one reader goroutine. The functions and the other
// types hold no shared state and are safe for concurrent use on distinct
// values.
package peer
