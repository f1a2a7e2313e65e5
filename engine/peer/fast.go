package peer

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"slices"
)

// AllowedFastSet returns the k pieces (fewer if the torrent has fewer) that
// BEP 6 lets a peer at ip request while choked, computed with the BEP's
// canonical algorithm so both sides agree: hash the peer's /24 network and
// the info-hash with SHA-1, repeatedly, taking each 4-byte word modulo
// numPieces until k distinct indices are found.
//
// BEP 6 defines the set for IPv4 only; an IPv4-mapped IPv6 address counts
// as IPv4, and for other IPv6 addresses we hash the /48 prefix (16 bytes,
// the rest zeroed), which groups a site's hosts the way /24 groups IPv4 ones.
// The result is ordered as generated. numPieces <= 0 or k <= 0 gives nil.
func AllowedFastSet(ip netip.Addr, infoHash [20]byte, numPieces, k int) []uint32 {
	if numPieces <= 0 || k <= 0 {
		return nil
	}
	k = min(k, numPieces)
	var x []byte
	if ip = ip.Unmap(); ip.Is4() {
		a := ip.As4()
		a[3] = 0
		x = make([]byte, 0, 4+20)
		x = append(x, a[:]...)
	} else {
		a := ip.As16()
		clear(a[6:])
		x = make([]byte, 0, 16+20)
		x = append(x, a[:]...)
	}
	x = append(x, infoHash[:]...)

	set := make([]uint32, 0, k)
	for len(set) < k {
		sum := sha1.Sum(x)
		x = sum[:]
		for i := 0; i < 5 && len(set) < k; i++ {
			index := binary.BigEndian.Uint32(sum[4*i:]) % uint32(numPieces)
			if !slices.Contains(set, index) {
				set = append(set, index)
			}
		}
	}
	return set
}
