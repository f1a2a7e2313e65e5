package tracker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
