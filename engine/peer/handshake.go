package peer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Protocol is the protocol string of the BEP 3 handshake.
const Protocol = "BitTorrent protocol"

// HandshakeLength is the size of a whole handshake on the wire.
const HandshakeLength = 1 + len(Protocol) + 8 + 20 + 20

// handshakeHeadLength covers everything up to and including the info-hash.
const handshakeHeadLength = HandshakeLength - 20

// PeerIDPrefix starts every peer id we make, Azureus style: client "SF",
// version 0.0.0.1.
const PeerIDPrefix = "-SF0001-"

// Reserved holds the eight reserved handshake bytes, whose bits advertise
// extensions.
type Reserved [8]byte

// Bits of Reserved, numbered as BEP 4 lists them: byte index and mask.
const (
	reservedExtendedByte, reservedExtendedMask = 5, 0x10 // BEP 10
	reservedFastByte, reservedFastMask         = 7, 0x04 // BEP 6
	reservedDHTByte, reservedDHTMask           = 7, 0x01 // BEP 5
	// BEP 52: "the 4th most significant bit in the last byte" (libtorrent
	// 2.0 sets and reads 0x10 of byte 7).
	reservedV2Byte, reservedV2Mask = 7, 0x10
)

// Fast reports whether the fast extension (BEP 6) is advertised.
func (r Reserved) Fast() bool { return r[reservedFastByte]&reservedFastMask != 0 }

// Extended reports whether the extension protocol (BEP 10) is advertised.
func (r Reserved) Extended() bool { return r[reservedExtendedByte]&reservedExtendedMask != 0 }

// DHT reports whether the peer runs a DHT node (BEP 5) and will send a port
// message.
func (r Reserved) DHT() bool { return r[reservedDHTByte]&reservedDHTMask != 0 }

// V2 reports whether the peer speaks the v2 protocol of BEP 52: sent with
// the v1 info-hash of a hybrid torrent, it offers to upgrade the connection
// to v2 (hash messages, v2 piece checks).
func (r Reserved) V2() bool { return r[reservedV2Byte]&reservedV2Mask != 0 }

// SetFast advertises the fast extension.
func (r *Reserved) SetFast() { r[reservedFastByte] |= reservedFastMask }

// SetExtended advertises the extension protocol.
func (r *Reserved) SetExtended() { r[reservedExtendedByte] |= reservedExtendedMask }

// SetDHT advertises a DHT node.
func (r *Reserved) SetDHT() { r[reservedDHTByte] |= reservedDHTMask }

// SetV2 advertises the v2 protocol (BEP 52), for a torrent with v2 hashes.
func (r *Reserved) SetV2() { r[reservedV2Byte] |= reservedV2Mask }

// Handshake is the first thing each side of a connection sends.
type Handshake struct {
	Reserved Reserved
	InfoHash [20]byte
	PeerID   [20]byte
}

// AppendHandshake appends the 68-byte wire form of h to buf.
func AppendHandshake(buf []byte, h Handshake) []byte {
	buf = append(buf, byte(len(Protocol)))
	buf = append(buf, Protocol...)
	buf = append(buf, h.Reserved[:]...)
	buf = append(buf, h.InfoHash[:]...)
	return append(buf, h.PeerID[:]...)
}

// WriteHandshake writes h in a single Write of 68 bytes, so it leaves in one
// segment and a peer that reads the handshake at once sees it whole.
func WriteHandshake(w io.Writer, h Handshake) error {
	var a [HandshakeLength]byte
	if _, err := w.Write(AppendHandshake(a[:0], h)); err != nil {
		return fmt.Errorf("peer: writing handshake: %w", err)
	}
	return nil
}

// ReadHandshake reads a whole 68-byte handshake. It reads exactly those
// bytes, so r can be handed to NewDecoder afterwards.
func ReadHandshake(r io.Reader) (Handshake, error) {
	var h Handshake
	var err error
	if h.Reserved, h.InfoHash, err = ReadHandshakeHead(r); err != nil {
		return Handshake{}, err
	}
	if h.PeerID, err = ReadPeerID(r); err != nil {
		return Handshake{}, err
	}
	return h, nil
}

// ReadHandshakeHead reads the first 48 bytes of a handshake: protocol
// string, reserved bytes and info-hash. An accepting side calls it to find
// the torrent (and to decide whether to answer at all) before it sends its
// own handshake; ReadPeerID then reads the rest. Some clients wait for our
// handshake before sending their peer id.
//
// A wrong protocol string wraps ErrProtocol (an encrypted MSE stream looks
// like that too). A stream that ends early returns io.EOF if nothing was
// read, or an error wrapping ErrProtocol and io.ErrUnexpectedEOF.
func ReadHandshakeHead(r io.Reader) (Reserved, [20]byte, error) {
	var a [handshakeHeadLength]byte
	if err := readFull(r, a[:], "handshake", true); err != nil {
		return Reserved{}, [20]byte{}, err
	}
	if a[0] != byte(len(Protocol)) || string(a[1:1+len(Protocol)]) != Protocol {
		return Reserved{}, [20]byte{}, fmt.Errorf("%w: handshake starts with %d %q, want %d %q",
			ErrProtocol, a[0], a[1:1+len(Protocol)], len(Protocol), Protocol)
	}
	p := 1 + len(Protocol)
	return Reserved(a[p : p+8]), [20]byte(a[p+8 : p+28]), nil
}

// ReadPeerID reads the 20-byte peer id that ends a handshake. The stream
// ending before it is an error wrapping ErrProtocol and io.ErrUnexpectedEOF:
// the head of the handshake came before it.
func ReadPeerID(r io.Reader) ([20]byte, error) {
	var id [20]byte
	err := readFull(r, id[:], "handshake peer id", false)
	return id, err
}

// readFull reads len(b) bytes. If atStart, a stream that ends before the
// first byte returns io.EOF: the peer hung up without saying anything.
func readFull(r io.Reader, b []byte, what string, atStart bool) error {
	n, err := io.ReadFull(r, b)
	switch {
	case err == nil:
		return nil
	case atStart && n == 0 && errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: stream ended inside the %s: %w", ErrProtocol, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("peer: reading %s: %w", what, err)
}

// NewPeerID returns PeerIDPrefix followed by 12 random bytes. Make one per
// client (not per connection): trackers and peers recognise us by it.
func NewPeerID() [20]byte {
	var id [20]byte
	copy(id[:], PeerIDPrefix)
	_, _ = rand.Read(id[len(PeerIDPrefix):]) // never fails since Go 1.24
	return id
}
