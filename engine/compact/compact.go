package compact

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrLength is returned when a compact list is not a whole number of entries.
var ErrLength = errors.New("compact: length is not a multiple of the entry size")

// ParsePeers decodes a list of 6-byte IPv4 peers. At most max entries are
// returned (max <= 0 means no limit); the rest are ignored.
func ParsePeers(b []byte, max int) ([]netip.AddrPort, error) { return parse(b, 4, max) }

// ParsePeers6 decodes a list of 18-byte IPv6 peers, like ParsePeers.
func ParsePeers6(b []byte, max int) ([]netip.AddrPort, error) { return parse(b, 16, max) }

func parse(b []byte, ipLen, max int) ([]netip.AddrPort, error) {
	size := ipLen + 2
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w (%d bytes, entries of %d)", ErrLength, len(b), size)
	}
	n := len(b) / size
	if max > 0 && n > max {
		n = max
	}
	out := make([]netip.AddrPort, 0, n)
	for i := 0; i < n; i++ {
		e := b[i*size : (i+1)*size]
		var ip netip.Addr
		if ipLen == 4 {
			ip = netip.AddrFrom4([4]byte(e[:4]))
		} else {
			ip = netip.AddrFrom16([16]byte(e[:16]))
		}
		out = append(out, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(e[ipLen:])))
	}
	return out, nil
}

// AppendPeer appends the compact form of ap: 6 bytes for IPv4 (including
// IPv4-mapped IPv6), 18 for IPv6.
func AppendPeer(b []byte, ap netip.AddrPort) []byte {
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		a := ip.As4()
		b = append(b, a[:]...)
	} else {
		a := ip.As16()
		b = append(b, a[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}
