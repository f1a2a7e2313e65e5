// Package metainfo reads and writes what names a torrent: .torrent files
// (BEP 3 metainfo with BEP 12 announce-list, BEP 19 url-list, BEP 27 private,
// BEP 47 pad files, BEP 52 v2 and hybrid torrents), magnet URIs (BEP 9,
// btih and btmh) and info-hashes, and creates new torrents from files on
// disk.
//
// # Concepts
//
// A torrent's content is the concatenation of its files in order, cut into
// pieces of Info.PieceLength bytes (the last one shorter), each checked by a
// SHA-1 in Info.Pieces. File.Offset places each file in that stream, so a
// read of a file maps to a byte range and from there to pieces
// (Info.PieceOffset, Info.PieceLen). Pad files (BEP 47) are real bytes of the
// stream, made of zeros, that a file system should hide.
//
// The info-hash (Hash) is the SHA-1 of the info dictionary's bytes exactly as
// they appear in the file (bencode.Raw), never of a re-encoding: a torrent
// with unsorted keys or fields we do not know keeps its identity. For the
// same reason MetaInfo keeps InfoBytes and Marshal writes them verbatim.
//
// Info is always multi-file shaped: a single-file torrent yields one File
// whose Path is []string{Name}, and SingleFile records the original form
// (the mount layer shows it as MNT/<Name> rather than MNT/<Name>/<Name> if it
// wishes).
//
// # Trust and bounds
//
// Every input passes the engine/bencode gate before any decoder sees it
// (lengths checked against the input, nesting bounded). On top of it, this
// package rejects a dictionary that repeats a key anywhere in the document:
// the decoder keeps the last copy while bencode.Raw, which the info-hash is
// taken over, finds the first, and the two must never disagree. Declared
// quantities are bounded: piece length 1..MaxPieceLength (v2: a power of two
// from 16 KiB), at most MaxFiles files, lengths non-negative with a total
// that fits int64 and matches the number of piece hashes exactly (v2-only:
// at most MaxPieces pieces). The v2 file tree is walked on its raw bytes:
// its files are counted before any is allocated, and the paths it spells
// out (it names a folder once for all its files) are bounded in components
// and bytes. Piece layers must have exactly one hash per piece of their
// file and hash to its root. Load reads at most MaxTorrentSize bytes and
// ParseMagnet at most MaxMagnetLength. Errors wrap ErrInvalid,
// ErrInvalidMagnet or ErrUnsupported and name the field at fault.
//
// The info dictionary must be valid. The descriptive top-level fields
// (announce, announce-list, url-list, creation date, comment, created by)
// are read leniently: one of the wrong type is ignored, as other clients do,
// because nothing depends on it for safety.
//
// # Sanitising file names
//
// Names in a torrent are untrusted. Info.Name and every File.Path component
// go through SanitizeComponent, and the result can never leave the torrent's
// folder:
//
//   - the "path.utf-8" / "name.utf-8" variants are used when present and
//     valid UTF-8; otherwise invalid UTF-8 bytes become U+FFFD;
//   - '/', '\\', NUL and the other control characters (U+0000-U+001F,
//     U+007F) become '_';
//   - "" and "." components are dropped; ".." becomes "_";
//   - a component longer than 255 bytes (MaxComponentBytes) is cut on a
//     UTF-8 boundary, keeping an extension of up to 16 bytes;
//   - a file path with no component left becomes "_";
//   - a name with nothing left becomes the info-hash in hex.
//
// Because components can no longer hold a separator, an absolute path such
// as ["", "etc", "passwd"] is just "etc/passwd" inside the torrent's folder.
//
// Sanitising can make two files meet, and a torrent can itself list a file
// "a" next to a file "a/b". No file is silently lost: walking the files in
// order, a file whose path is already taken by an earlier file, or is a
// folder of another file, gets ".1" (".2", ...) inserted before its
// extension, choosing a name no other file has ("x.txt" -> "x.1.txt").
// Names are compared byte for byte (Linux semantics).
//
// # Versions
//
// A v1 torrent has SHA-1 piece hashes (Info.Pieces) and a v1 info-hash, the
// SHA-1 of the info dictionary. A v2 torrent (BEP 52, "meta version" 2)
// describes its files in a "file tree", each non-empty file with the root
// of a Merkle tree of SHA-256 over 16 KiB blocks ("pieces root", see
// engine/merkle); the piece-layer hashes of files larger than a piece sit
// outside the info dictionary in "piece layers". Its info-hash is the
// SHA-256 of the info dictionary, truncated to 20 bytes where trackers, the
// DHT and the handshake want one. A hybrid torrent has both in one info
// dictionary, its v1 file list aligned to pieces by pad files.
//
// Info is one shape for all three. HasV1 and HasV2 say which hashes it has;
// InfoHashV1 and InfoHashV2 hold them and InfoHash gives the 20-byte name (v1
// if any, else v2 truncated), which MetaInfo.InfoHash and Magnet.InfoHash
// repeat. Files is in piece order with pad files marked Pad; each non-pad
// file of a v2 or hybrid torrent has V2 hashes (pieces root, piece layer
// when known). A hybrid's files are its v1 list, checked against the file
// tree (same names, lengths, order, each non-empty file starting where v2
// puts it); a v2-only torrent's files are the tree's with a pad file after
// each one that does not end on a piece boundary, except the last, so the
// last piece is short as in v1 (libtorrent pads that one too; the piece
// indices agree). Pieces are checked with PieceHash (SHA-1) or VerifyPieceV2
// (the file's tree); in v2 a piece never spans files (PieceV2). A magnet's
// info arrives without piece layers: LayerRequests and CheckProof fetch and
// check them from peers, WithPieceLayers adds them.
//
// # Creating torrents
//
// Create hashes a file or a folder. A folder's files are listed in path
// order (component by component), empty files included; empty folders cannot
// be represented and vanish. Symlink policy: the root itself is followed if
// it is a link; inside a folder, symlinks are left out unless
// CreateOptions.FollowSymlinks is set, and then only links to regular files
// are followed (a link to a folder could loop or escape the tree). Devices,
// FIFOs and sockets are an error, not skipped. Reading is sequential with
// large reads while SHA-1 (and SHA-256 for v2) runs on all cores; a file
// that changes size while being hashed is an error. CreateOptions.Format
// picks v1 (the default: every client reads it), v2 or hybrid; v2 and
// hybrid torrents get the info-hashes libtorrent 2.0 computes for the same
// files, piece length and order (hybrids: a pad file after every file not
// ending on a piece boundary, the last included, unless there is one file).
// Format implements flag.Value for a --format flag.
//
// # Pitfalls
//
//   - Empty files have no pieces of their own; code mapping files to pieces
//     must not assume a file covers at least one piece.
//   - Several pad files often share the path ".pad/<size>"; they are renamed
//     like any collision (after every real file, which keeps its name), so
//     hide them by File.Pad, not by name.
//   - A v2-only Info has no SHA-1s: PieceHash gives the zero hash, which no
//     piece matches; check its pieces with VerifyPieceV2.
//   - A hybrid's pad bytes are covered by the SHA-1s only; VerifyPieceV2
//     insists they are zeros, so check both where both exist (BEP 52).
//   - Marshal writes only the top-level fields MetaInfo models and the piece
//     layers Info holds; other keys (encoding, ...) are dropped, the info
//     dictionary never.
//   - Magnet.DisplayName and Magnet.Trackers are untrusted text: pass a
//     display name through SanitizeComponent before using it as a name.
//   - Parsing a torrent with hundreds of thousands of files costs about
//     5 us per file (reflection in the bencode decoder); do it once and
//     keep the Info.
//
// Everything here is safe for concurrent use: functions keep no state and
// parsed values are not modified after they are returned.
package metainfo
