package swarmtest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// StaticTracker is an HTTP tracker on 127.0.0.1 that answers every announce
// with the same IPv4 peers (compact, BEP 23), whatever the info-hash, and
// records no one. It sends clients to addresses no real tracker would hand
// out: DelayRelays in front of seeders that announced elsewhere.
type StaticTracker struct {
	// URL is the announce URL, "http://127.0.0.1:PORT/announce".
	URL string
}

// StartStaticTracker serves peers ("IP:port", IPv4) until tb ends.
func StartStaticTracker(tb testing.TB, peers ...string) *StaticTracker {
	tb.Helper()
	var compact []byte
	for _, p := range peers {
		ap, err := netip.ParseAddrPort(p)
		if err != nil || !ap.Addr().Is4() {
			tb.Fatalf("swarmtest.StartStaticTracker: %q is not an IPv4 address and port", p)
		}
		compact = append(compact, ap.Addr().AsSlice()...)
		compact = append(compact, byte(ap.Port()>>8), byte(ap.Port()))
	}
	body := fmt.Appendf(nil, "d8:completei%de10:incompletei0e8:intervali1800e5:peers%d:%se", len(peers), len(compact), compact)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/announce" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("swarmtest.StartStaticTracker: %v", err)
	}
	srv.Listener = ln
	srv.Start()
	tb.Cleanup(srv.Close)
	return &StaticTracker{URL: srv.URL + "/announce"}
}
