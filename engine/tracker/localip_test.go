package tracker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLocalIP: announces leave from the requested address, so a tracker
// records the address the client listens on.
func TestLocalIP(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.7")
	seen := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		seen <- host
		w.Write([]byte("d8:intervali60e5:peers0:e"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Announce(ctx, srv.URL+"/announce", AnnounceRequest{Port: 1, LocalIP: local, NumWant: -1}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != local.String() {
		t.Errorf("HTTP announce came from %s, want %s", got, local)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		_, from, err := pc.ReadFrom(buf)
		if err == nil {
			seen <- from.(*net.UDPAddr).IP.String()
		}
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	Announce(ctx2, "udp://"+pc.LocalAddr().String()+"/announce", AnnounceRequest{Port: 1, LocalIP: local})
	select {
	case got := <-seen:
		if got != local.String() {
			t.Errorf("UDP connect came from %s, want %s", got, local)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no UDP packet reached the tracker")
	}
}

// TestLocalIPOtherFamily: a client listening on [::1] still reaches a
// tracker that is on IPv4 only (from any address: a socket bound to ::1
// cannot reach 127.0.0.1), over HTTP and UDP.
func TestLocalIPOtherFamily(t *testing.T) {
	seen := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		seen <- host
		w.Write([]byte("d8:intervali60e5:peers0:e"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Announce(ctx, srv.URL+"/announce", AnnounceRequest{Port: 1, LocalIP: netip.IPv6Loopback(), NumWant: -1}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "127.0.0.1" {
		t.Errorf("HTTP announce came from %s, want 127.0.0.1", got)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		if _, _, err := pc.ReadFrom(buf); err == nil {
			seen <- "udp"
		}
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	Announce(ctx2, "udp://"+pc.LocalAddr().String()+"/announce", AnnounceRequest{Port: 1, LocalIP: netip.IPv6Loopback()})
	select {
	case <-seen:
	case <-time.After(2 * time.Second):
		t.Fatal("no UDP packet reached the tracker")
	}
}

// TestIPv6Param: BEP 7's ipv6= carries a usable IPv6 address, and never
// a link-local, IPv4-mapped or IPv4 one.
func TestIPv6Param(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // the parameter's raw value, "" for none
	}{
		{"2001:db8::1", "2001%3Adb8%3A%3A1"},
		{"::1", "%3A%3A1"},
		{"fe80::1", ""},
		{"::ffff:192.0.2.1", ""},
		{"192.0.2.1", ""},
		{"", ""},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			u := httpAnnounceURL("http://t/announce", AnnounceRequest{IPv6: a})
			q, err := url.ParseQuery(u[strings.IndexByte(u, '?')+1:])
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if v, ok := q["ipv6"]; ok {
				got = url.QueryEscape(v[0])
				got = strings.ReplaceAll(got, "%3a", "%3A")
			}
			if got != tc.want {
				t.Errorf("ipv6=%q in %s, want %q", got, u, tc.want)
			}
		})
	}
}
