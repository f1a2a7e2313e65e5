package session

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/swarmfs/swarmfs/cache"
)

// TestPeersRoundTrip: decodePeers reads back what encodePeers wrote, IPv4
// and IPv6, and stops at a damaged line with what came before it.
func TestPeersRoundTrip(t *testing.T) {
	peers := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:6881"), netip.MustParseAddrPort("[::1]:51413")}
	got, err := decodePeers(encodePeers(peers))
	if err != nil || !slices.Equal(got, peers) {
		t.Fatalf("decodePeers(encodePeers(%v)) = %v, %v", peers, got, err)
	}
	got, err = decodePeers([]byte("127.0.0.2:6881\nnot an address\n127.0.0.3:1\n"))
	if err == nil || !slices.Equal(got, peers[:1]) {
		t.Fatalf("damaged list: %v, %v; want the first peer and an error", got, err)
	}
	if got, err := decodePeers([]byte("127.0.0.2:0\n")); err == nil {
		t.Fatalf("port 0 accepted: %v", got)
	}
}

// FuzzDecodePeers: any bytes from the cache give a bounded list of
// addresses with ports, or an error, never a panic; what decodes encodes
// back to a prefix of the input's meaning.
func FuzzDecodePeers(f *testing.F) {
	f.Add([]byte("127.0.0.2:6881\n[::1]:51413\n"))
	f.Add([]byte("127.0.0.2:6881"))
	f.Add([]byte("\n\n"))
	f.Add([]byte("[fe80::1%eth0]:1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		peers, err := decodePeers(b)
		if len(peers) > maxPeerLines {
			t.Fatalf("%d peers, more than %d", len(peers), maxPeerLines)
		}
		if len(b) > cache.MaxPeersLen && (err == nil || len(peers) > 0) {
			t.Fatalf("%d bytes decoded", len(b))
		}
		for _, p := range peers {
			if p.Port() == 0 || !p.Addr().IsValid() {
				t.Fatalf("decoded %v", p)
			}
		}
		again, err := decodePeers(encodePeers(peers))
		if err != nil || !slices.Equal(again, peers) {
			t.Fatalf("re-decoding %v: %v, %v", peers, again, err)
		}
	})
}
