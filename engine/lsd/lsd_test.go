package lsd

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type found struct {
	ih   [20]byte
	addr netip.AddrPort
}

// pair starts two Services on loopback that send to each other.
func pair(t *testing.T, interval time.Duration) (a, b *Service, atA, atB chan found) {
	t.Helper()
	pa, pb := freePort(t), freePort(t)
	lo := netip.MustParseAddr("127.0.0.1")
	atA, atB = make(chan found, 100), make(chan found, 100)
	start := func(listen, group uint16, port uint16, ch chan found) *Service {
		s, err := New(Config{
			Group:    netip.AddrPortFrom(lo, group),
			Listen:   netip.AddrPortFrom(lo, listen),
			Port:     port,
			Interval: interval,
			OnPeer:   func(ih [20]byte, addr netip.AddrPort) { ch <- found{ih, addr} },
			Logf:     t.Logf,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a = start(pa, pb, 1111, atA)
	b = start(pb, pa, 2222, atB)
	return a, b, atA, atB
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

func expect(t *testing.T, ch chan found, want found) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("found %x at %v, want %x at %v", got.ih, got.addr, want.ih, want.addr)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing found, want %x at %v", want.ih, want.addr)
	}
}

func expectNothing(t *testing.T, ch chan found, wait time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected %x at %v", got.ih, got.addr)
	case <-time.After(wait):
	}
}

func drain(ch chan found) {
	for {
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

func TestServicesFindEachOther(t *testing.T) {
	a, b, atA, atB := pair(t, time.Hour)
	lo := netip.MustParseAddr("127.0.0.1")
	// b has the torrent first: a's announce reaches it at once.
	b.Add(ih1)
	drain(atA)
	a.Add(ih1)
	expect(t, atB, found{ih1, netip.AddrPortFrom(lo, 1111)})
	// Announces of a torrent we did not Add are not reported, and one
	// Added later waits for the next announce.
	b.Add(ih2)
	expectNothing(t, atA, 300*time.Millisecond)
	a.Add(ih2)
	expect(t, atB, found{ih2, netip.AddrPortFrom(lo, 1111)})
	// Removing stops the reports; a re-Add within the interval does not
	// announce again.
	b.Remove(ih2)
	a.Remove(ih2)
	a.Add(ih2)
	expectNothing(t, atB, 300*time.Millisecond)
}

// TestServiceIgnores: our own cookie, torrents we do not have, malformed
// datagrams and floods reach no callback.
func TestServiceIgnores(t *testing.T) {
	a, _, atA, _ := pair(t, time.Hour)
	a.Add(ih1)
	to := a.Addr()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), to.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(b []byte) {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	send(Announce{Port: 9, InfoHashes: [][20]byte{ih1}, Cookie: a.cookie}.Append(nil, "h"))
	send(Announce{Port: 9, InfoHashes: [][20]byte{ih2}}.Append(nil, "h"))
	send([]byte("BT-SEARCH * HTTP/1.1\r\nPort: 9\r\n\r\n"))
	expectNothing(t, atA, 300*time.Millisecond)

	for i := 0; i < 3*maxPerSource; i++ {
		send(Announce{Port: uint16(100 + i), InfoHashes: [][20]byte{ih1}}.Append(nil, "h"))
	}
	n := 0
	for done := false; !done; {
		select {
		case <-atA:
			n++
		case <-time.After(300 * time.Millisecond):
			done = true
		}
	}
	// The limit counts every well-formed message, the one for a torrent
	// we do not have included.
	if n != maxPerSource-1 {
		t.Fatalf("%d announces from one source acted on, want the limit %d less one", n, maxPerSource)
	}
}

// TestMulticast runs two Services on a real multicast group (on a port of
// our own) when this machine can deliver multicast to itself.
func TestMulticast(t *testing.T) {
	group := netip.AddrPortFrom(DefaultGroup.Addr(), freePort(t))
	got := make(chan found, 10)
	var ss []*Service
	for _, port := range []uint16{1111, 2222} {
		s, err := New(Config{Group: group, Port: port, OnPeer: func(ih [20]byte, addr netip.AddrPort) { got <- found{ih, addr} }})
		if err != nil {
			t.Skipf("multicast unavailable: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		ss = append(ss, s)
	}
	ss[0].Add(ih1)
	ss[1].Add(ih1)
	select {
	case f := <-got:
		if f.ih != ih1 {
			t.Fatalf("found %x", f.ih)
		}
		t.Logf("multicast works: found %v", f.addr)
	case <-time.After(3 * time.Second):
		t.Skip("multicast sends but nothing arrives (no multicast route on this machine)")
	}
}

// TestIPv6Group: two Services with an IPv4 and an IPv6 group each (both
// unicast on loopback, standing in for BEP 14's two multicast groups)
// hear each other on the IPv6 one, from the sender's IPv6 address; the
// Host line names the group as [v6]:port.
func TestIPv6Group(t *testing.T) {
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	p4a, p4b := freePort(t), freePort(t)
	p6a, p6b := freePort6(t), freePort6(t)
	atB := make(chan found, 100)
	start := func(cfg Config) *Service {
		cfg.Logf = t.Logf
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// A's IPv4 group is a port nobody listens on: only IPv6 can carry.
	a := start(Config{
		Group: netip.AddrPortFrom(lo4, freePort(t)), Listen: netip.AddrPortFrom(lo4, p4a),
		Group6: netip.AddrPortFrom(lo6, p6b), Listen6: netip.AddrPortFrom(lo6, p6a),
		Port: 1111,
	})
	b := start(Config{
		Group: netip.AddrPortFrom(lo4, p4a), Listen: netip.AddrPortFrom(lo4, p4b),
		Group6: netip.AddrPortFrom(lo6, p6a), Listen6: netip.AddrPortFrom(lo6, p6b),
		Port:   2222,
		OnPeer: func(ih [20]byte, addr netip.AddrPort) { atB <- found{ih, addr} },
	})
	if g := a.Groups(); len(g) != 2 || !g[1].Addr().Is6() {
		t.Fatalf("groups %v, want an IPv4 and an IPv6 one", g)
	}
	ih := [20]byte{6}
	b.Add(ih)
	a.Add(ih)
	expect(t, atB, found{ih, netip.AddrPortFrom(lo6, 1111)})

	// The Host line of an IPv6 announce brackets the address.
	msg := Announce{Port: 1, InfoHashes: [][20]byte{ih}}.Append(nil, DefaultGroup6.String())
	if !strings.Contains(string(msg), "Host: [ff15::efc0:988f]:6771\r\n") {
		t.Errorf("announce %q", msg)
	}
}

func freePort6(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// TestSource: announces leave from Config.Source, so the peer that hears
// them dials that address (a client listening on one address).
func TestSource(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	pb := freePort(t)
	heard := make(chan found, 10)
	b, err := New(Config{Group: netip.AddrPortFrom(lo, freePort(t)), Listen: netip.AddrPortFrom(lo, pb), Port: 2222,
		OnPeer: func(ih [20]byte, addr netip.AddrPort) { heard <- found{ih, addr} }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Add(ih1)
	src := netip.MustParseAddr("127.0.0.7")
	a, err := New(Config{Group: netip.AddrPortFrom(lo, pb), Listen: netip.AddrPortFrom(lo, freePort(t)), Port: 1111, Source: src,
		Source6: netip.MustParseAddr("::1")}) // of the other family: unused
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Add(ih1)
	expect(t, heard, found{ih1, netip.AddrPortFrom(src, 1111)})
}
