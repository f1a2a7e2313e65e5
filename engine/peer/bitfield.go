package peer

import (
	"fmt"
	"math/bits"
)

// CheckBitfield checks a bitfield message's payload against a torrent of
// numPieces pieces: BEP 3 wants exactly ceil(numPieces/8) bytes, high bit of
// the first byte for piece 0, and the spare bits at the end cleared. A
// violation is an error wrapping ErrProtocol.
func CheckBitfield(b []byte, numPieces int) error {
	if numPieces < 0 {
		return fmt.Errorf("peer: negative piece count %d", numPieces)
	}
	if want := (numPieces + 7) / 8; len(b) != want {
		return fmt.Errorf("%w: bitfield of %d bytes for %d pieces, want %d", ErrProtocol, len(b), numPieces, want)
	}
	if spare := numPieces % 8; spare != 0 {
		if mask := byte(0xFF) >> spare; b[len(b)-1]&mask != 0 {
			return fmt.Errorf("%w: bitfield has spare bits set after piece %d", ErrProtocol, numPieces-1)
		}
	}
	return nil
}

// Bits is a set of piece indexes in BEP 3's wire layout: the high bit
// of byte 0 is piece 0. It is the payload of a bitfield message as it is,
// so a checked payload (CheckBitfield) converts without a copy. The zero
// value is the empty set; indexes past its end read as absent.
type Bits []byte

// NewBits is an empty set for a torrent of numPieces pieces.
func NewBits(numPieces int) Bits { return make(Bits, (numPieces+7)/8) }

// Has reports whether piece i is in the set; false for any i outside it.
func (b Bits) Has(i int) bool {
	return i >= 0 && i/8 < len(b) && b[i/8]&(0x80>>(uint(i)%8)) != 0
}

// Set adds piece i and reports whether it was new. i must lie within the
// set (see Grow).
func (b Bits) Set(i int) bool {
	mask := byte(0x80) >> (uint(i) % 8)
	if b[i/8]&mask != 0 {
		return false
	}
	b[i/8] |= mask
	return true
}

// Grow returns b with room for piece i, zero-extended; i must not be
// negative. The caller bounds i: the set grows to i/8+1 bytes.
func (b Bits) Grow(i int) Bits {
	if n := i/8 + 1; n > len(b) {
		b = append(b, make([]byte, n-len(b))...)
	}
	return b
}

// Count is the number of pieces in the set.
func (b Bits) Count() int {
	n := 0
	for _, v := range b {
		n += bits.OnesCount8(v)
	}
	return n
}

// Each calls fn with every piece in the set, in increasing order, until
// fn returns false.
func (b Bits) Each(fn func(i int) bool) {
	for k, v := range b {
		for v != 0 {
			j := bits.LeadingZeros8(v)
			if !fn(k*8 + j) {
				return
			}
			v &^= 0x80 >> j
		}
	}
}
