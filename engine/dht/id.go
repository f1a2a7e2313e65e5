package dht

import (
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"net/netip"
)

// idLen is the length of node IDs and info-hashes: 160 bits.
const idLen = 20

// xorCmp compares the XOR distances of a and b to target: -1 if a is
// closer, +1 if b is closer, 0 if they are the same ID.
func xorCmp(target, a, b [idLen]byte) int {
	for i := 0; i < idLen; i++ {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}

// commonPrefixLen is the number of leading bits a and b share (160 if equal).
func commonPrefixLen(a, b [idLen]byte) int {
	for i := 0; i < idLen; i++ {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return idLen * 8
}

// randomID returns a uniformly random ID.
func randomID() [idLen]byte {
	var id [idLen]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic("dht: crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return id
}

// randomIDWithPrefix returns a random ID that shares exactly depth leading
// bits with self (for depth < 160): a target inside bucket depth.
func randomIDWithPrefix(self [idLen]byte, depth int) [idLen]byte {
	id := randomID()
	if depth >= idLen*8 {
		return self
	}
	for i := 0; i < depth/8; i++ {
		id[i] = self[i]
	}
	byteIdx, bit := depth/8, uint(depth%8)
	// keep self's first bit bits of this byte, flip the next, random after.
	keep := byte(0xff) << (8 - bit)
	flip := byte(0x80) >> bit
	id[byteIdx] = (self[byteIdx] & keep) | ((self[byteIdx] ^ flip) & flip) | (id[byteIdx] &^ (keep | flip))
	return id
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bep42Prefix returns the 21-bit prefix BEP 42 requires of a node at ip
// with the random value r, in the top bits of a uint32.
func bep42Prefix(ip netip.Addr, r byte) uint32 {
	ip = ip.Unmap()
	var b []byte
	if ip.Is4() {
		a := ip.As4()
		v := binary.BigEndian.Uint32(a[:]) & 0x030f3fff
		v |= uint32(r&7) << 29
		b = binary.BigEndian.AppendUint32(nil, v)
	} else {
		a := ip.As16()
		v := binary.BigEndian.Uint64(a[:8]) & 0x0103070f1f3f7fff
		v |= uint64(r&7) << 61
		b = binary.BigEndian.AppendUint64(nil, v)
	}
	return crc32.Checksum(b, castagnoli)
}

// bep42Exempt reports whether ip is outside BEP 42's scope: loopback,
// private and link-local nodes may pick any ID (a loopback test network,
// a LAN), so enforcement must never reject them.
func bep42Exempt(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast()
}

// bep42Valid reports whether id is a BEP 42 secure ID for ip. Exempt
// addresses are always valid.
func bep42Valid(id [idLen]byte, ip netip.Addr) bool {
	if bep42Exempt(ip) {
		return true
	}
	want := bep42Prefix(ip, id[19])
	got := uint32(id[0])<<24 | uint32(id[1])<<16 | uint32(id[2])<<8
	return got&0xfffff800 == want&0xfffff800
}

// bep42ID returns a random ID that is BEP 42 secure for ip.
func bep42ID(ip netip.Addr) [idLen]byte {
	id := randomID()
	if bep42Exempt(ip) {
		return id
	}
	p := bep42Prefix(ip, id[19])
	id[0] = byte(p >> 24)
	id[1] = byte(p >> 16)
	id[2] = byte(p>>8)&0xf8 | id[2]&7
	return id
}

// usableAddr reports whether a node address learned from the network is
// worth contacting. Addresses in private or loopback ranges are only
// accepted from a source that is itself in such a range, so a public node
// cannot point us at services on our own machine or LAN.
func usableAddr(ap netip.AddrPort, from netip.Addr) bool {
	ip := ap.Addr().Unmap()
	if ap.Port() == 0 || !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	local := ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
	if local && from.IsValid() {
		f := from.Unmap()
		return f.IsLoopback() || f.IsPrivate() || f.IsLinkLocalUnicast()
	}
	return true
}
