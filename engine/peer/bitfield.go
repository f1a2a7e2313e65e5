package peer

import "fmt"

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
