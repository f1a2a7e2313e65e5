package dht

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// dualConn stands in for a dual-stack socket without binding every
// address: one socket on 127.0.0.1 and one on [::1], same port; reads
// come from either, writes go out of the one of the destination's family.
type dualConn struct {
	c4, c6 *net.UDPConn
	in     chan dualMsg
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

type dualMsg struct {
	b    []byte
	from netip.AddrPort
}

func newDualConn(t *testing.T) (*dualConn, netip.AddrPort) {
	t.Helper()
	for range 20 {
		c4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c4.LocalAddr().(*net.UDPAddr).Port
		c6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: port})
		if err != nil {
			c4.Close()
			continue
		}
		d := &dualConn{c4: c4, c6: c6, in: make(chan dualMsg, 64), done: make(chan struct{})}
		for _, c := range []*net.UDPConn{c4, c6} {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				for {
					buf := make([]byte, maxPacket)
					n, from, err := c.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					select {
					case d.in <- dualMsg{buf[:n], from}:
					case <-d.done:
						return
					}
				}
			}()
		}
		t.Cleanup(func() { d.Close(); d.wg.Wait() })
		return d, netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port))
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return nil, netip.AddrPort{}
}

func (d *dualConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case m := <-d.in:
		return copy(b, m.b), m.from, nil
	case <-d.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (d *dualConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if to.Addr().Unmap().Is4() {
		return d.c4.WriteToUDPAddrPort(b, netip.AddrPortFrom(to.Addr().Unmap(), to.Port()))
	}
	return d.c6.WriteToUDPAddrPort(b, to)
}

func (d *dualConn) Close() error {
	d.once.Do(func() {
		close(d.done)
		d.c4.Close()
		d.c6.Close()
	})
	return nil
}

func (d *dualConn) v4(local netip.AddrPort) string {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), local.Port()).String()
}

func (d *dualConn) v6(local netip.AddrPort) string {
	return netip.AddrPortFrom(netip.IPv6Loopback(), local.Port()).String()
}

// TestDualStack: a node on a dual-stack socket keeps one routing table
// per family (BEP 32), finds peers announced among IPv4 nodes and among
// IPv6 nodes, answers "want" with both "nodes" and "nodes6", and saves
// and reloads nodes of both families.
func TestDualStack(t *testing.T) {
	conn, local := newDualConn(t)
	state := filepath.Join(t.TempDir(), "dht.state")
	d, err := NewOn(Config{Bootstrap: []string{}, QueryTimeout: 500 * time.Millisecond, StatePath: state}, conn, local)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var four, six []*Node
	for i := range 3 {
		four = append(four, newTestNode(t, 2+i, []string{conn.v4(local)}, nil))
		n6, err := New(Config{Listen: "[::1]:0", Bootstrap: []string{conn.v6(local)}, QueryTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n6.Close() })
		six = append(six, n6)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range append(slices.Clone(four), six...) {
		if err := n.Bootstrap(ctx); err != nil {
			t.Fatalf("%v bootstrap: %v", n.Addr(), err)
		}
	}
	ih4, ih6 := randomID(), randomID()
	if err := four[0].Announce(ctx, ih4, 1111, nil); err != nil {
		t.Fatal(err)
	}
	if err := six[0].Announce(ctx, ih6, 2222, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.Nodes6 == 0 || st.Nodes-st.Nodes6 == 0 {
		t.Fatalf("dual node knows %d nodes, %d of them IPv6: want both families", st.Nodes, st.Nodes6)
	}
	for _, tc := range []struct {
		ih   [20]byte
		want netip.AddrPort
	}{
		{ih4, netip.MustParseAddrPort("127.0.0.2:1111")},
		{ih6, netip.AddrPortFrom(netip.IPv6Loopback(), 2222)},
	} {
		var got []netip.AddrPort
		err := d.GetPeers(ctx, tc.ih, func(ps []netip.AddrPort) { got = append(got, ps...) })
		if err != nil || !slices.Contains(got, tc.want) {
			t.Errorf("GetPeers: %v, %v; want %v among them", got, err, tc.want)
		}
	}

	// One torrent announced from both families: each asker gets the
	// values of its own family.
	ihBoth := randomID()
	if err := four[1].Announce(ctx, ihBoth, 3333, nil); err != nil {
		t.Fatal(err)
	}
	if err := six[1].Announce(ctx, ihBoth, 4444, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		asker *Node
		to    string
		want  netip.AddrPort
	}{
		{four[2], conn.v4(local), netip.MustParseAddrPort("127.0.0.3:3333")},
		{six[2], conn.v6(local), netip.AddrPortFrom(netip.IPv6Loopback(), 4444)},
	} {
		r, err := tc.asker.query(ctx, netip.MustParseAddrPort(tc.to), qGetPeers, &msgArgs{InfoHash: string(ihBoth[:])})
		if err != nil {
			t.Fatal(err)
		}
		if got := parseValues(r.Values, 100); !slices.Equal(got, []netip.AddrPort{tc.want}) {
			t.Errorf("get_peers over %s: values %v, want [%v]", tc.to, got, tc.want)
		}
	}

	// BEP 32: an IPv6 node asking for both gets both lists.
	r, err := six[1].query(ctx, netip.MustParseAddrPort(conn.v6(local)), qFindNode, &msgArgs{Target: string(ih4[:]), Want: []string{"n4", "n6"}})
	if err != nil {
		t.Fatal(err)
	}
	n4, err4 := parseNodes(r.Nodes, false, 16)
	n6, err6 := parseNodes(r.Nodes6, true, 16)
	if err := errors.Join(err4, err6); err != nil || len(n4) == 0 || len(n6) == 0 {
		t.Errorf("want n4 n6: %d IPv4 and %d IPv6 nodes (%v)", len(n4), len(n6), err)
	}
	// Without want, an IPv6 asker gets IPv6 nodes only.
	r, err = six[1].query(ctx, netip.MustParseAddrPort(conn.v6(local)), qFindNode, &msgArgs{Target: string(ih4[:])})
	if err != nil {
		t.Fatal(err)
	}
	if r.Nodes != "" || r.Nodes6 == "" {
		t.Errorf("no want: nodes %d bytes, nodes6 %d bytes", len(r.Nodes), len(r.Nodes6))
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	conn2, local2 := newDualConn(t)
	d2, err := NewOn(Config{Bootstrap: []string{}, StatePath: state}, conn2, local2)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if st := d2.Stats(); st.Nodes6 == 0 || st.Nodes-st.Nodes6 == 0 {
		t.Errorf("reloaded dual node has %d nodes, %d IPv6: want both families", st.Nodes, st.Nodes6)
	}
}

// TestFamilies: which families a node serves, by its listen address.
func TestFamilies(t *testing.T) {
	for _, tc := range []struct {
		listen  string
		network string
		local   string
		fams    []family
	}{
		{"0.0.0.0:6881", "udp4", "0.0.0.0:6881", []family{fam4}},
		{"127.0.0.1:0", "udp4", "127.0.0.1:0", []family{fam4}},
		{"[::1]:0", "udp6", "[::1]:0", []family{fam6}},
		{"[::]:6881", "udp", "[::]:6881", []family{fam4, fam6}},
		{":6881", "udp", "[::]:6881", []family{fam4, fam6}},
		{"[::ffff:127.0.0.1]:0", "udp4", "127.0.0.1:0", []family{fam4}},
	} {
		if got := listenNetwork(tc.listen); got != tc.network {
			t.Errorf("listenNetwork(%q) = %q, want %q", tc.listen, got, tc.network)
		}
		local := netip.MustParseAddrPort(tc.local)
		if got := familiesOf(local.Addr()); !slices.Equal(got, tc.fams) {
			t.Errorf("familiesOf(%v) = %v, want %v", local, got, tc.fams)
		}
	}
}
