package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key layout (see doc.go). Every key starts with a one-byte kind; per-torrent
// kinds follow it with the 20-byte info-hash, so one torrent's keys of a kind
// are contiguous and a prefix scan finds them.
const (
	kindPiece   = 'p' // 'p' | ih | piece u32 BE  -> piece bytes (format 1 only; see checkFormat)
	kindRecord  = 'i' // 'i' | ih | piece u32 BE  -> record: size, checksum, recency, slot (inline)
	kindMeta    = 'm' // 'm' | ih                 -> torrent metainfo bytes
	kindPeers   = 'e' // 'e' | ih                 -> the caller's peer notes (PutPeers)
	kindFormat  = 'v' // "v"                      -> store format version
	kindFlusher = 'z' // "z"                      -> throwaway key whose DropPrefix flushes memtables
)

const (
	pieceKeyLen = 1 + 20 + 4
	metaKeyLen  = 1 + 20

	// formatVersion is written once per store; Open refuses other versions
	// rather than misreading them, but for format 1 (pieces in badger's
	// value log), whose pieces it drops (see checkFormat).
	formatVersion = 2

	// record layout: version(2) | size u32 | checksum u64 | seq u64 | slot shift u8.
	recordVersion = 2
	recordLen     = 1 + 4 + 8 + 8 + 1
)

var (
	formatKey  = []byte{kindFormat}
	flusherKey = []byte{kindFlusher}
)

func pieceKeyOf(kind byte, ih InfoHash, piece uint32) []byte {
	k := make([]byte, pieceKeyLen)
	k[0] = kind
	copy(k[1:21], ih[:])
	binary.BigEndian.PutUint32(k[21:], piece)
	return k
}

func metaKeyOf(ih InfoHash) []byte {
	k := make([]byte, metaKeyLen)
	k[0] = kindMeta
	copy(k[1:], ih[:])
	return k
}

func peersKeyOf(ih InfoHash) []byte {
	k := metaKeyOf(ih)
	k[0] = kindPeers
	return k
}

// parsePieceKey splits a 'p' or 'i' key.
func parsePieceKey(k []byte) (ih InfoHash, piece uint32, ok bool) {
	if len(k) != pieceKeyLen {
		return ih, 0, false
	}
	copy(ih[:], k[1:21])
	return ih, binary.BigEndian.Uint32(k[21:]), true
}

// record is the small inline companion of a stored piece. It lets Open rebuild
// the index without reading a single piece, and says where the piece is: in
// the torrent's piece file of slot shift shift, at piece<<shift.
type record struct {
	size  int32
	sum   uint64 // checksum of ih | piece | data, see pieceSum
	seq   uint64 // recency clock value of the last write or (lazily persisted) read
	shift uint8
}

func (r record) encode() []byte {
	b := make([]byte, recordLen)
	b[0] = recordVersion
	binary.BigEndian.PutUint32(b[1:5], uint32(r.size))
	binary.BigEndian.PutUint64(b[5:13], r.sum)
	binary.BigEndian.PutUint64(b[13:21], r.seq)
	b[21] = r.shift
	return b
}

var errBadRecord = errors.New("malformed piece record")

func decodeRecord(b []byte) (record, error) {
	if len(b) != recordLen || b[0] != recordVersion {
		return record{}, fmt.Errorf("%w (%d bytes)", errBadRecord, len(b))
	}
	r := record{
		size:  int32(binary.BigEndian.Uint32(b[1:5])),
		sum:   binary.BigEndian.Uint64(b[5:13]),
		seq:   binary.BigEndian.Uint64(b[13:21]),
		shift: b[21],
	}
	switch {
	case r.size <= 0:
		return record{}, fmt.Errorf("%w (size %d)", errBadRecord, r.size)
	case r.shift < minShift || r.shift > maxShift || int64(r.size) > int64(1)<<r.shift:
		return record{}, fmt.Errorf("%w (size %d in slots of 1<<%d)", errBadRecord, r.size, r.shift)
	}
	return r, nil
}
