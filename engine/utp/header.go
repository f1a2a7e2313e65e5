package utp

import (
	"encoding/binary"
	"errors"
)

// Packet types (BEP 29).
const (
	stData  = 0
	stFin   = 1
	stState = 2
	stReset = 3
	stSyn   = 4
	stMax   = stSyn
)

const (
	version   = 1
	headerLen = 20

	extNone = 0
	extSACK = 1 // selective ACK: a bitmask of packets received past ack_nr+1

	// maxExtensions bounds how many extension headers one packet may
	// carry: the chain is untrusted and each link costs a little work.
	maxExtensions = 8
	// maxSACKLen is the longest selective-ACK bitmask we send (bytes,
	// a multiple of 4); received ones may be up to 255 bytes and are
	// read only as far as our send queue reaches.
	maxSACKLen = 128
)

var (
	errShort     = errors.New("utp: packet shorter than a header")
	errVersion   = errors.New("utp: not a uTP version 1 packet")
	errType      = errors.New("utp: unknown packet type")
	errExtension = errors.New("utp: malformed extension chain")
)

// header is the fixed 20-byte uTP header.
type header struct {
	typ    uint8
	connID uint16
	tsUS   uint32 // sender's timestamp, microseconds
	tsDiff uint32 // sender's last measured one-way delay of our packets
	wnd    uint32 // sender's free receive buffer, bytes
	seq    uint16
	ack    uint16
}

// packet is a parsed datagram. sack and payload alias the input.
type packet struct {
	header
	sack    []byte // selective-ACK bitmask, nil when absent
	payload []byte
}

// isUTP tells a uTP datagram from anything else sharing the socket (a
// bencoded DHT message starts with 'd', a UDP tracker reply with 0).
func isUTP(b []byte) bool {
	return len(b) >= headerLen && b[0]&0x0f == version && b[0]>>4 <= stMax
}

// parsePacket decodes b into p. It walks the extension chain with a
// bound on its length and never reads past b; p's slices alias b.
func parsePacket(b []byte, p *packet) error {
	if len(b) < headerLen {
		return errShort
	}
	if b[0]&0x0f != version {
		return errVersion
	}
	p.typ = b[0] >> 4
	if p.typ > stMax {
		return errType
	}
	p.connID = binary.BigEndian.Uint16(b[2:])
	p.tsUS = binary.BigEndian.Uint32(b[4:])
	p.tsDiff = binary.BigEndian.Uint32(b[8:])
	p.wnd = binary.BigEndian.Uint32(b[12:])
	p.seq = binary.BigEndian.Uint16(b[16:])
	p.ack = binary.BigEndian.Uint16(b[18:])
	p.sack = nil
	ext := b[1]
	rest := b[headerLen:]
	for n := 0; ext != extNone; n++ {
		if n == maxExtensions || len(rest) < 2 {
			return errExtension
		}
		next, l := rest[0], int(rest[1])
		if len(rest) < 2+l {
			return errExtension
		}
		if ext == extSACK && p.sack == nil && l > 0 {
			p.sack = rest[2 : 2+l]
		}
		// Other extensions (libtorrent's close reason is 3) are skipped.
		ext = next
		rest = rest[2+l:]
	}
	p.payload = rest
	return nil
}

// putHeader writes h into b[:headerLen] with ext as the first extension
// type.
func putHeader(b []byte, h *header, ext uint8) {
	b[0] = h.typ<<4 | version
	b[1] = ext
	binary.BigEndian.PutUint16(b[2:], h.connID)
	binary.BigEndian.PutUint32(b[4:], h.tsUS)
	binary.BigEndian.PutUint32(b[8:], h.tsDiff)
	binary.BigEndian.PutUint32(b[12:], h.wnd)
	binary.BigEndian.PutUint16(b[16:], h.seq)
	binary.BigEndian.PutUint16(b[18:], h.ack)
}

// seqLess reports whether a comes before b in 16-bit wrap-around order.
func seqLess(a, b uint16) bool { return int16(a-b) < 0 }

// seqDiff is a-b in wrap-around order, in [-32768, 32767].
func seqDiff(a, b uint16) int { return int(int16(a - b)) }

// sackBit reports whether bit i of a selective-ACK bitmask is set: bit i
// stands for sequence number ack_nr+2+i, least significant bit first.
func sackBit(mask []byte, i int) bool {
	return i>>3 < len(mask) && mask[i>>3]&(1<<(i&7)) != 0
}
