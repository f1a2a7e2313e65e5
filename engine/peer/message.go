package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// BlockSize is the size of the blocks every client requests: BEP 3 clients
// drop connections asking for more than 16 KiB, so requests never exceed it.
const BlockSize = 16 * 1024

// DefaultMaxMessageLength admits a piece message carrying a block of up to
// 128 KiB (eight times BlockSize) plus its 9-byte header. Bitfields of
// torrents with more than about a million pieces need more: pass a larger
// maximum to NewDecoder (or SetMaxLength) once the piece count is known.
const DefaultMaxMessageLength = 1<<17 + 9

// ErrProtocol is wrapped by every error that means the remote peer broke the
// protocol: a malformed or oversized message, an unknown message id, a bad
// handshake, a message cut off by the end of the stream. The caller's answer
// is always the same: disconnect (and maybe penalise) the peer.
var ErrProtocol = errors.New("peer: protocol violation")

// ErrMessageTooLarge is wrapped by the error Decode returns when a message's
// length prefix exceeds the decoder's maximum. It wraps ErrProtocol.
var ErrMessageTooLarge = fmt.Errorf("%w: message too large", ErrProtocol)

// MessageType is the one-byte id that follows a message's length prefix.
type MessageType uint8

// Message ids of BEP 3 (0-8), the DHT port of BEP 5 (9), the fast extension
// of BEP 6 (0x0D-0x11), the extension protocol of BEP 10 (20) and the hash
// messages of BEP 52 (21-23).
const (
	Choke         MessageType = 0
	Unchoke       MessageType = 1
	Interested    MessageType = 2
	NotInterested MessageType = 3
	Have          MessageType = 4
	Bitfield      MessageType = 5
	Request       MessageType = 6
	Piece         MessageType = 7
	Cancel        MessageType = 8
	Port          MessageType = 9
	Suggest       MessageType = 0x0D
	HaveAll       MessageType = 0x0E
	HaveNone      MessageType = 0x0F
	Reject        MessageType = 0x10
	AllowedFast   MessageType = 0x11
	Extended      MessageType = 20
	HashRequest   MessageType = 21
	Hashes        MessageType = 22
	HashReject    MessageType = 23
)

var typeNames = [...]string{
	Choke:         "choke",
	Unchoke:       "unchoke",
	Interested:    "interested",
	NotInterested: "not_interested",
	Have:          "have",
	Bitfield:      "bitfield",
	Request:       "request",
	Piece:         "piece",
	Cancel:        "cancel",
	Port:          "port",
	Suggest:       "suggest",
	HaveAll:       "have_all",
	HaveNone:      "have_none",
	Reject:        "reject",
	AllowedFast:   "allowed_fast",
	Extended:      "extended",
	HashRequest:   "hash_request",
	Hashes:        "hashes",
	HashReject:    "hash_reject",
}

// String returns the name the BEPs use for t, or "MessageType(n)" for an id
// this package does not know.
func (t MessageType) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Known reports whether t is a message id this package decodes.
func (t MessageType) Known() bool {
	return int(t) < len(typeNames) && typeNames[t] != ""
}

// fixedLength returns the exact length (id byte included) of messages of
// type t that have one, or the minimum length and false for the others.
func (t MessageType) fixedLength() (n int, exact bool) {
	switch t {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return 1, true
	case Have, Suggest, AllowedFast:
		return 5, true
	case Request, Cancel, Reject:
		return 13, true
	case Port:
		return 3, true
	case Bitfield:
		return 1, false
	case Piece:
		return 9, false
	case Extended:
		return 2, false
	case HashRequest, HashReject:
		return 1 + hashHeaderLength, true
	case Hashes:
		return 1 + hashHeaderLength, false
	}
	return 0, false
}

// Message is one peer wire message, decoded or to be encoded. Which fields
// matter depends on Type:
//
//	Have, Suggest, AllowedFast   Index
//	Request, Cancel, Reject      Index, Begin, Length
//	Piece                        Index, Begin, Block
//	Bitfield                     Bitfield
//	Port                         Port
//	Extended                     ExtendedID, Payload
//	HashRequest, HashReject      PiecesRoot, BaseLayer, Index, Length, ProofLayers
//	Hashes                       the same, and Hashes
//
// KeepAlive set means the message is a keep-alive (a zero length prefix) and
// every other field is ignored.
//
// A Message filled by Decoder.Decode has slices that alias the decoder's
// buffer: they are valid only until the next call to Decode.
type Message struct {
	KeepAlive            bool
	Type                 MessageType
	Index, Begin, Length uint32
	Bitfield             []byte // Bitfield payload
	Block                []byte // Piece payload
	Port                 uint16 // Port (DHT)
	ExtendedID           uint8
	Payload              []byte // Extended payload after the extended id byte

	// BEP 52 hash messages: the file (its pieces root), the layer of its
	// Merkle tree (0: the 16 KiB blocks' leaves), and with Index and
	// Length the nodes of that layer; ProofLayers asks for uncle hashes
	// that far up. Hashes holds Length node hashes then the uncle hashes,
	// 32 bytes each (HashesLength gives the size).
	PiecesRoot             [32]byte
	BaseLayer, ProofLayers uint32
	Hashes                 []byte
}

// String describes m for logs; it does not print payloads.
func (m *Message) String() string {
	if m.KeepAlive {
		return "keepalive"
	}
	switch m.Type {
	case Have, Suggest, AllowedFast:
		return fmt.Sprintf("%v(%d)", m.Type, m.Index)
	case Request, Cancel, Reject:
		return fmt.Sprintf("%v(%d, %d, %d)", m.Type, m.Index, m.Begin, m.Length)
	case Piece:
		return fmt.Sprintf("%v(%d, %d, %d bytes)", m.Type, m.Index, m.Begin, len(m.Block))
	case Bitfield:
		return fmt.Sprintf("%v(%d bytes)", m.Type, len(m.Bitfield))
	case Port:
		return fmt.Sprintf("%v(%d)", m.Type, m.Port)
	case Extended:
		return fmt.Sprintf("%v(%d, %d bytes)", m.Type, m.ExtendedID, len(m.Payload))
	case HashRequest, HashReject, Hashes:
		s := fmt.Sprintf("%v(%x, base %d, index %d, length %d, proof %d", m.Type, m.PiecesRoot[:4], m.BaseLayer, m.Index, m.Length, m.ProofLayers)
		if m.Type == Hashes {
			s += fmt.Sprintf(", %d hashes", len(m.Hashes)/32)
		}
		return s + ")"
	}
	return m.Type.String()
}

// AppendMessage appends the wire encoding of m, length prefix included, to
// buf and returns the extended slice. A keep-alive is four zero bytes.
//
// A Type this package does not know is encoded as its id followed by
// Payload, which lets callers send messages of later BEPs; Decoder rejects
// such ids, so both ends must agree on them first.
func AppendMessage(buf []byte, m *Message) []byte {
	if m.KeepAlive {
		return append(buf, 0, 0, 0, 0)
	}
	switch m.Type {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return append(buf, 0, 0, 0, 1, byte(m.Type))
	case Have, Suggest, AllowedFast:
		buf = append(buf, 0, 0, 0, 5, byte(m.Type))
		return binary.BigEndian.AppendUint32(buf, m.Index)
	case Request, Cancel, Reject:
		buf = append(buf, 0, 0, 0, 13, byte(m.Type))
		buf = binary.BigEndian.AppendUint32(buf, m.Index)
		buf = binary.BigEndian.AppendUint32(buf, m.Begin)
		return binary.BigEndian.AppendUint32(buf, m.Length)
	case Piece:
		buf = AppendPieceHeader(buf, m.Index, m.Begin, len(m.Block))
		return append(buf, m.Block...)
	case Bitfield:
		buf = binary.BigEndian.AppendUint32(buf, uint32(1+len(m.Bitfield)))
		buf = append(buf, byte(Bitfield))
		return append(buf, m.Bitfield...)
	case Port:
		buf = append(buf, 0, 0, 0, 3, byte(Port))
		return binary.BigEndian.AppendUint16(buf, m.Port)
	case Extended:
		buf = binary.BigEndian.AppendUint32(buf, uint32(2+len(m.Payload)))
		buf = append(buf, byte(Extended), m.ExtendedID)
		return append(buf, m.Payload...)
	case HashRequest, HashReject:
		return appendHashHeader(buf, m, 0)
	case Hashes:
		return append(appendHashHeader(buf, m, len(m.Hashes)), m.Hashes...)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(1+len(m.Payload)))
	buf = append(buf, byte(m.Type))
	return append(buf, m.Payload...)
}

// PieceHeaderLength is the size of what AppendPieceHeader appends.
const PieceHeaderLength = 13

// AppendPieceHeader appends the 13-byte header of a piece message carrying a
// block of blockLen bytes: length prefix, id, index and begin. The caller
// writes the block itself next, so a writer can hand the header and the block
// to the connection (net.Buffers) without copying the block into buf.
func AppendPieceHeader(buf []byte, index, begin uint32, blockLen int) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(9+blockLen))
	buf = append(buf, byte(Piece))
	buf = binary.BigEndian.AppendUint32(buf, index)
	return binary.BigEndian.AppendUint32(buf, begin)
}
