package peer

import (
	"fmt"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// MetadataPieceSize is the size of every ut_metadata piece but the last.
const MetadataPieceSize = 16 * 1024

// DefaultMaxMetadataSize is a sensible bound on the info dictionary a magnet
// download accepts (libtorrent's default is 30 MiB; a 4 MiB info dictionary
// already describes some 200,000 pieces).
const DefaultMaxMetadataSize = 32 << 20

// ut_metadata message types (the "msg_type" key).
const (
	MetadataRequest = 0
	MetadataData    = 1
	MetadataReject  = 2
)

// MetadataMessage is a BEP 9 ut_metadata message.
type MetadataMessage struct {
	Type      int    // MetadataRequest, MetadataData or MetadataReject
	Piece     int    // index of the 16 KiB piece of the info dictionary
	TotalSize int    // size of the whole info dictionary: data messages only
	Data      []byte // the piece: data messages only; aliases the parsed payload
}

// ParseMetadataMessage decodes a ut_metadata payload (after the extended
// id): a bencoded dictionary, followed by the piece's bytes for a data
// message.
//
// Every error wraps ErrProtocol. The checks: msg_type is 0, 1 or 2 (BEP 9
// says to ignore unknown types; we return an error the caller may choose to
// ignore, so the message never reaches code that does not expect it);
// 0 <= piece; piece*16 KiB < maxTotalSize; a data message has a total_size in
// 1..maxTotalSize, a piece within it, and exactly the piece's length of data
// (16 KiB, or the remainder for the last piece); request and reject carry no
// data. maxTotalSize <= 0 means DefaultMaxMetadataSize.
func ParseMetadataMessage(payload []byte, maxTotalSize int) (MetadataMessage, error) {
	m, err := parseMetadataMessage(payload, maxTotalSize)
	if err != nil {
		return MetadataMessage{}, fmt.Errorf("%w: ut_metadata: %w", ErrProtocol, err)
	}
	return m, nil
}

func parseMetadataMessage(payload []byte, maxTotalSize int) (MetadataMessage, error) {
	if maxTotalSize <= 0 {
		maxTotalSize = DefaultMaxMetadataSize
	}
	n, err := bencode.Scan(payload)
	if err != nil {
		return MetadataMessage{}, err
	}
	var m MetadataMessage
	var haveType, havePiece, haveTotal bool
	err = eachKey(payload[:n], func(key string, val []byte) error {
		var dst *int
		var seen *bool
		switch key {
		case "msg_type":
			dst, seen = &m.Type, &haveType
		case "piece":
			dst, seen = &m.Piece, &havePiece
		case "total_size":
			dst, seen = &m.TotalSize, &haveTotal
		default:
			return nil
		}
		v, ok := rawInt(val)
		if !ok {
			return fmt.Errorf("%s is not an integer", key)
		}
		if v < 0 || v > int64(maxTotalSize) {
			return fmt.Errorf("%s %d out of range", key, v)
		}
		*dst, *seen = int(v), true
		return nil
	})
	if err != nil {
		return MetadataMessage{}, err
	}
	switch {
	case !haveType:
		return MetadataMessage{}, fmt.Errorf("no msg_type")
	case !havePiece:
		return MetadataMessage{}, fmt.Errorf("no piece")
	case m.Type > MetadataReject:
		return MetadataMessage{}, fmt.Errorf("unknown msg_type %d", m.Type)
	case m.Piece >= (maxTotalSize+MetadataPieceSize-1)/MetadataPieceSize:
		return MetadataMessage{}, fmt.Errorf("piece %d beyond the %d-byte limit", m.Piece, maxTotalSize)
	}
	data := payload[n:]
	if m.Type != MetadataData {
		if len(data) != 0 {
			return MetadataMessage{}, fmt.Errorf("%d bytes after a msg_type %d dictionary", len(data), m.Type)
		}
		m.TotalSize = 0
		return m, nil
	}
	if !haveTotal || m.TotalSize == 0 {
		return MetadataMessage{}, fmt.Errorf("data message without a positive total_size")
	}
	pieces := (m.TotalSize + MetadataPieceSize - 1) / MetadataPieceSize
	if m.Piece >= pieces {
		return MetadataMessage{}, fmt.Errorf("piece %d of a %d-byte info dictionary (%d pieces)", m.Piece, m.TotalSize, pieces)
	}
	want := min(MetadataPieceSize, m.TotalSize-m.Piece*MetadataPieceSize)
	if len(data) != want {
		return MetadataMessage{}, fmt.Errorf("piece %d has %d bytes, want %d", m.Piece, len(data), want)
	}
	m.Data = data[:len(data):len(data)]
	return m, nil
}

// Marshal encodes m as a ut_metadata payload: the dictionary (total_size
// only for data messages), then Data for data messages.
func (m MetadataMessage) Marshal() []byte {
	b := make([]byte, 0, 64+len(m.Data))
	b = append(b, "d8:msg_type"...)
	b = appendInt(b, int64(m.Type))
	b = append(b, "5:piece"...)
	b = appendInt(b, int64(m.Piece))
	if m.Type == MetadataData {
		b = append(b, "10:total_size"...)
		b = appendInt(b, int64(m.TotalSize))
		b = append(b, 'e')
		return append(b, m.Data...)
	}
	return append(b, 'e')
}
