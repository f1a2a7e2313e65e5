package swarmtest

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// TestGoTracker: peers announcing over IPv4 and IPv6 (and one telling
// its IPv6 address with ipv6=) are handed out in "peers" and "peers6".
func TestGoTracker(t *testing.T) {
	tr := StartGoTracker(t)
	ih := "ABCDEFGHIJKLMNOPQRST"
	announce := func(base, id string, port, ipv6 string) (p4, p6 string) {
		t.Helper()
		q := url.Values{"info_hash": {ih}, "peer_id": {id}, "port": {port}}
		if ipv6 != "" {
			q.Set("ipv6", ipv6)
		}
		resp, err := http.Get(base + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Peers  string `bencode:"peers"`
			Peers6 string `bencode:"peers6"`
		}
		if err := bencode.Unmarshal(body, &r); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		return r.Peers, r.Peers6
	}
	announce(tr.HTTP4, "peer-four-0000000000", "1000", "::1")
	announce(tr.HTTP6, "peer-six-00000000000", "2000", "")
	p4, p6 := announce(tr.HTTP4, "peer-asking-00000000", "3000", "")
	if p4 != "\x7f\x00\x00\x01\x03\xe8" {
		t.Errorf("peers %x, want 127.0.0.1:1000", p4)
	}
	if len(p6) != 36 {
		t.Errorf("peers6 %x, want [::1]:1000 and [::1]:2000", p6)
	}
	want := []string{"127.0.0.1:1000", "127.0.0.1:3000", "[::1]:1000", "[::1]:2000"}
	if got := tr.Peers([20]byte([]byte(ih))); !slices.Equal(got, want) {
		t.Errorf("Peers = %v, want %v", got, want)
	}
}
