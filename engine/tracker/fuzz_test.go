package tracker

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// checkResponse asserts the bounds every parsed response promises.
func checkResponse(t *testing.T, r *AnnounceResponse) {
	t.Helper()
	if len(r.Peers) > MaxPeers {
		t.Fatalf("%d peers", len(r.Peers))
	}
	seen := make(map[netip.AddrPort]bool, len(r.Peers))
	for _, p := range r.Peers {
		if seen[p] || !p.IsValid() || p.Port() == 0 || p.Addr().Is4In6() || p.Addr().IsUnspecified() {
			t.Fatalf("bad or repeated peer %v", p)
		}
		seen[p] = true
	}
	if r.Interval < 0 || r.Interval > MaxInterval || r.MinInterval < 0 || r.MinInterval > MaxInterval {
		t.Fatalf("intervals %v, %v", r.Interval, r.MinInterval)
	}
	if r.Seeders < 0 || r.Leechers < 0 || len(r.Warning) > maxMessage || len(r.TrackerID) > maxMessage {
		t.Fatalf("response %+v", r)
	}
}

// FuzzHTTPResponse feeds arbitrary bodies to the HTTP response parser.
// Its seed corpus is in testdata/fuzz/FuzzHTTPResponse.
func FuzzHTTPResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseHTTPResponse(body)
		if err != nil {
			if r != nil {
				t.Fatal("response with an error")
			}
			if errors.Is(err, ErrFailure) && len(err.Error()) > maxMessage+len(ErrFailure.Error())+2 {
				t.Fatalf("failure message of %d bytes", len(err.Error()))
			}
			return
		}
		checkResponse(t, r)
	})
}

// FuzzUDPResponse feeds arbitrary datagrams to the BEP 15 parsers: as a
// connect response, an announce response over IPv4 and IPv6, and through
// the error action. Its seed corpus is in testdata/fuzz/FuzzUDPResponse.
func FuzzUDPResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, pkt []byte) {
		isError := len(pkt) >= 8 && binary.BigEndian.Uint32(pkt) == actionError
		if _, err := parseUDPConnect(pkt); isError != errors.Is(err, ErrFailure) {
			t.Fatalf("connect: error action %v, err %v", isError, err)
		}
		for _, v6 := range []bool{false, true} {
			r, err := parseUDPAnnounce(pkt, v6)
			if isError != errors.Is(err, ErrFailure) {
				t.Fatalf("announce: error action %v, err %v", isError, err)
			}
			if err == nil {
				if len(pkt) < udpAnnounceMin {
					t.Fatalf("accepted a %d-byte announce response", len(pkt))
				}
				checkResponse(t, r)
			}
		}
	})
}
