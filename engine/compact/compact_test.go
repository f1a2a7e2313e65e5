package compact

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

func TestRoundTrip(t *testing.T) {
	v4 := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:6881"), netip.MustParseAddrPort("10.1.2.3:1")}
	var b []byte
	for _, p := range v4 {
		b = AppendPeer(b, p)
	}
	got, err := ParsePeers(b, 0)
	if err != nil || len(got) != 2 || got[0] != v4[0] || got[1] != v4[1] {
		t.Fatalf("got %v %v", got, err)
	}
	if got, _ := ParsePeers(b, 1); len(got) != 1 {
		t.Fatalf("max not honoured: %v", got)
	}
	v6 := netip.MustParseAddrPort("[::1]:51413")
	got, err = ParsePeers6(AppendPeer(nil, v6), 0)
	if err != nil || len(got) != 1 || got[0] != v6 {
		t.Fatalf("v6 got %v %v", got, err)
	}
	if _, err := ParsePeers(b[:5], 0); !errors.Is(err, ErrLength) {
		t.Fatalf("short list: %v", err)
	}
}

// FuzzParsePeers decodes data as IPv4 and as IPv6 peer lists, capped and
// not. A list is accepted exactly when it is a whole number of entries; the
// cap is honoured; every peer re-encodes to its entry (an IPv4-mapped IPv6
// address to the IPv4 form, as AppendPeer documents); the peers cost memory
// in proportion to the input.
func FuzzParsePeers(f *testing.F) {
	fuzztest.Seeds(f, [][]byte{
		nil,
		{127, 0, 0, 1, 0x1a, 0xe1},
		{127, 0, 0, 2, 0x1a, 0xe1, 10, 1, 2, 3, 0, 1, 0, 0, 0, 0, 0, 0},
		{127, 0, 0, 1, 0x1a},
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xc8, 0xd5},
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, 0x1a, 0xe1},
		{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80, 127, 0, 0, 3, 0, 81},
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, ipLen := range []int{4, 16} {
			size := ipLen + 2
			for _, max := range []int{0, 2} {
				var peers []netip.AddrPort
				var err error
				bound := uint64(8*len(b) + 256)
				alloc := fuzztest.Allocated(bound, func() {
					if ipLen == 4 {
						peers, err = ParsePeers(b, max)
					} else {
						peers, err = ParsePeers6(b, max)
					}
				})
				if (err != nil) != (len(b)%size != 0) || (err != nil && !errors.Is(err, ErrLength)) {
					t.Fatalf("%d bytes, entries of %d: err %v", len(b), size, err)
				}
				if err != nil {
					continue
				}
				want := len(b) / size
				if max > 0 {
					want = min(want, max)
				}
				if len(peers) != want {
					t.Fatalf("%d peers from %d bytes, entries of %d, cap %d", len(peers), len(b), size, max)
				}
				if alloc > bound {
					t.Fatalf("%d peers from %d bytes allocated %d bytes", len(peers), len(b), alloc)
				}
				for i, p := range peers {
					e := b[i*size : (i+1)*size]
					if p.Addr().Is4In6() {
						e = e[12:]
					}
					if got := AppendPeer(nil, p); !bytes.Equal(got, e) {
						t.Fatalf("peer %d (%v) re-encodes as %x, came from %x", i, p, got, e)
					}
				}
			}
		}
	})
}
