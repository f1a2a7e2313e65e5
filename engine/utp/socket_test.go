package utp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSynFloodBounded: SYNs that never follow up (spoofed sources) hold
// at most MaxHalfOpen entries, never reach Accept, expire, and do not
// stop a real peer from connecting afterwards.
func TestSynFloodBounded(t *testing.T) {
	s := testSocket(t, Config{MaxHalfOpen: 8, HalfOpenTimeout: 300 * time.Millisecond})
	raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	to := s.Addr().(*net.UDPAddr).AddrPort()
	b := make([]byte, headerLen)
	for i := range 100 {
		putHeader(b, &header{typ: stSyn, connID: uint16(i * 2), seq: 1, wnd: 1 << 20}, extNone)
		if _, err := raw.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the SYNs are processed", func() bool {
		st := s.Stats()
		return st.HalfOpen+int(st.Refused) >= 100
	})
	if st := s.Stats(); st.HalfOpen > 8 || st.Conns > 8 || st.Refused < 92 {
		t.Fatalf("after 100 SYNs: %+v, want at most 8 half-open", st)
	}
	select {
	case c := <-s.acceptq:
		t.Fatalf("a half-open connection from %s reached Accept", c.raddr)
	default:
	}
	waitFor(t, 5*time.Second, "half-open connections expire", func() bool { return s.Stats().Conns == 0 })
	a := testSocket(t, Config{})
	pair(t, a, s, s.Addr().String())
}

// TestOthers: datagrams that are not uTP reach Others; its writes leave
// from the shared socket.
func TestOthers(t *testing.T) {
	s := testSocket(t, Config{})
	o := s.Others()
	if s.Others() != o {
		t.Fatal("Others returned a second OtherConn")
	}
	raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	q := []byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
	if _, err := raw.WriteToUDPAddrPort(q, s.Addr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := o.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != string(q) || from != raw.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("read %q from %v (%v)", buf[:n], from, err)
	}
	if _, err := o.WriteToUDPAddrPort([]byte("d1:y1:re"), from); err != nil {
		t.Fatal(err)
	}
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, src, err := raw.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "d1:y1:re" || src != s.Addr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("got %q from %v (%v)", buf[:n], src, err)
	}
	// uTP still works beside it.
	a := testSocket(t, Config{})
	pair(t, a, s, s.Addr().String())
	s.Close()
	if _, _, err := o.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// TestDialTimeout: a SYN nobody answers fails within the dial's
// context.
func TestDialTimeout(t *testing.T) {
	s := testSocket(t, Config{})
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.DialAddrPort(ctx, dead.LocalAddr().(*net.UDPAddr).AddrPort()); err == nil {
		t.Fatal("dial to a silent address succeeded")
	}
	waitFor(t, 2*time.Second, "the failed dial is forgotten", func() bool { return s.Stats().Conns == 0 })
	_ = netip.AddrPort{}
}

// TestFamilyMismatch: a socket bound to an IPv4 address refuses to dial
// or write to an IPv6 one, with an error (the batched writer used to
// panic encoding it).
func TestFamilyMismatch(t *testing.T) {
	s, err := Listen("udp", "127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v6 := netip.MustParseAddrPort("[::1]:9")
	if _, err := s.DialAddrPort(ctx, v6); !errors.Is(err, ErrFamily) {
		t.Errorf("dial %v: %v, want ErrFamily", v6, err)
	}
	if _, err := s.Others().WriteToUDPAddrPort([]byte("d1:ai0ee"), v6); !errors.Is(err, ErrFamily) {
		t.Errorf("write to %v: %v, want ErrFamily", v6, err)
	}
}

// TestTickBeforeSyn: the timer may see a dialled connection between its
// entry in the table and its SYN (Dial takes the two locks one after
// the other): it must wait for the SYN, not resend an empty queue.
func TestTickBeforeSyn(t *testing.T) {
	s := testSocket(t, Config{})
	now := time.Now()
	c := newConn(s, netip.MustParseAddrPort("127.0.0.1:9"), 1, 2, true, now)
	ob := &outbox{}
	c.mu.Lock()
	ev := c.tickLocked(now.Add(tickInterval), ob)
	c.mu.Unlock()
	if ev != 0 || ob.n != 0 {
		t.Errorf("tick before the SYN: event %v, %d datagrams", ev, ob.n)
	}
}
