package compact

import (
	"errors"
	"net/netip"
	"testing"
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

func FuzzParsePeers(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1, 0x1a, 0xe1})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, ipLen := range []int{4, 16} {
			peers, err := parse(b, ipLen, 100)
			if err != nil {
				continue
			}
			if len(peers) > 100 {
				t.Fatalf("max exceeded")
			}
		}
	})
}
