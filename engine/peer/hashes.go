package peer

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// hashHeaderLength is what the three BEP 52 hash messages share after their
// id: a pieces root and four 32-bit fields (base layer, index, length,
// proof layers).
const hashHeaderLength = 32 + 4*4

// Bounds on the fields of hash messages, checked by the Decoder. They are
// framing bounds; whether a request fits a file's tree is the engine's
// question (engine/merkle's Request.Check).
const (
	// MaxHashLength is the most nodes a hash message may name: libtorrent
	// refuses more (8192 leaves cover a 128 MiB piece). BEP 52 asks
	// requesters to stay at 512 or fewer.
	MaxHashLength = 8192
	// MaxHashLayer bounds BaseLayer and ProofLayers: the Merkle tree of the
	// largest file a torrent can hold is 49 layers high.
	MaxHashLayer = 63
)

// NumUncles returns how many uncle hashes a hashes message carries after
// its length nodes: one per proof layer from the top of the requested
// range up (BEP 52: "the first log2(length)-1 proof layers are omitted";
// a length that is not a power of two counts as the next one, as
// libtorrent counts it). length must be at least 1.
func NumUncles(length, proofLayers uint32) int {
	levels := bits.Len32(length - 1) // ceil(log2(length))
	return max(0, int(proofLayers)-levels+1)
}

// HashesLength returns the size of the Hashes field of a hashes message
// answering length nodes with proofLayers: 32 bytes per node and uncle.
// It fails for fields out of the Decoder's bounds.
func HashesLength(length, proofLayers uint32) (int, error) {
	if err := checkHashFields(0, length, proofLayers); err != nil {
		return 0, err
	}
	return 32 * (int(length) + NumUncles(length, proofLayers)), nil
}

func checkHashFields(base, length, proofLayers uint32) error {
	switch {
	case length == 0 || length > MaxHashLength:
		return fmt.Errorf("%w: hash message for %d nodes, want 1 to %d", ErrProtocol, length, MaxHashLength)
	case base > MaxHashLayer || proofLayers > MaxHashLayer:
		return fmt.Errorf("%w: hash message with base layer %d and %d proof layers, more than %d", ErrProtocol, base, proofLayers, MaxHashLayer)
	}
	return nil
}

// checkHashesLength checks a hashes message's header (hdr, after the id)
// against the size of its payload, before the payload is read.
func checkHashesLength(hdr []byte, payload int) error {
	base := binary.BigEndian.Uint32(hdr[32:])
	length := binary.BigEndian.Uint32(hdr[40:])
	proof := binary.BigEndian.Uint32(hdr[44:])
	if err := checkHashFields(base, length, proof); err != nil {
		return err
	}
	if want := hashHeaderLength + 32*(int(length)+NumUncles(length, proof)); payload != want {
		return fmt.Errorf("%w: hashes message of %d bytes, want %d for %d nodes and %d proof layers",
			ErrProtocol, payload, want, length, proof)
	}
	return nil
}

// decodeHashHeader fills the hash fields of m from body, the message after
// its id; its length is already checked.
func decodeHashHeader(m *Message, body []byte) error {
	m.PiecesRoot = [32]byte(body)
	m.BaseLayer = binary.BigEndian.Uint32(body[32:])
	m.Index = binary.BigEndian.Uint32(body[36:])
	m.Length = binary.BigEndian.Uint32(body[40:])
	m.ProofLayers = binary.BigEndian.Uint32(body[44:])
	if err := checkHashFields(m.BaseLayer, m.Length, m.ProofLayers); err != nil {
		return err
	}
	if m.Type == Hashes {
		m.Hashes = body[hashHeaderLength:]
	}
	return nil
}

// appendHashHeader appends the length prefix, id and header of a hash
// message followed by extra bytes.
func appendHashHeader(buf []byte, m *Message, extra int) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(1+hashHeaderLength+extra))
	buf = append(buf, byte(m.Type))
	buf = append(buf, m.PiecesRoot[:]...)
	buf = binary.BigEndian.AppendUint32(buf, m.BaseLayer)
	buf = binary.BigEndian.AppendUint32(buf, m.Index)
	buf = binary.BigEndian.AppendUint32(buf, m.Length)
	return binary.BigEndian.AppendUint32(buf, m.ProofLayers)
}
