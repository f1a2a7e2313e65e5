package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// rawNode is a hand-driven UDP endpoint on loopback for wire tests.
type rawNode struct {
	t    testing.TB
	conn *net.UDPConn
}

func newRawNode(t testing.TB, host int) *rawNode {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(host)}), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawNode{t: t, conn: c}
}

func (r *rawNode) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *rawNode) send(to netip.AddrPort, b string) {
	r.t.Helper()
	if _, err := r.conn.WriteToUDPAddrPort([]byte(b), to); err != nil {
		r.t.Fatal(err)
	}
}

// recv waits up to d for a datagram; ok is false on timeout.
func (r *rawNode) recv(d time.Duration) ([]byte, netip.AddrPort, bool) {
	r.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, maxPacket)
	n, from, err := r.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, netip.AddrPort{}, false
	}
	return buf[:n], from, true
}

// ask sends a query and decodes the reply. Queries the node sends us
// meanwhile (a ping to check a new contact) are skipped: they are not
// the reply, and a slow machine can order them either way.
func (r *rawNode) ask(to netip.AddrPort, q string) (*msg, int) {
	r.t.Helper()
	r.send(to, q)
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, _, ok := r.recv(time.Until(deadline))
		if !ok {
			r.t.Fatalf("no reply to %q", q)
		}
		m, err := decodeMsg(b)
		if err != nil {
			r.t.Fatalf("undecodable reply %q: %v", b, err)
		}
		if m.Y != "q" {
			return m, len(b)
		}
	}
}

func bstr(s string) string { return fmt.Sprintf("%d:%s", len(s), s) }

func query(t, q string, args map[string]string) string {
	var b strings.Builder
	b.WriteString("d1:ad")
	for _, k := range []string{"id", "implied_port", "info_hash", "port", "target", "token"} {
		if v, ok := args[k]; ok {
			b.WriteString(bstr(k))
			if k == "port" || k == "implied_port" {
				b.WriteString("i" + v + "e")
			} else {
				b.WriteString(bstr(v))
			}
		}
	}
	b.WriteString("e1:q" + bstr(q) + "1:t" + bstr(t) + "1:y1:qe")
	return b.String()
}

func TestAnswers(t *testing.T) {
	n := newTestNode(t, 40, []string{}, nil)
	c := newRawNode(t, 41)
	myID := randomIDString()
	ih := randomIDString()
	nid := n.ID()

	m, _ := c.ask(n.Addr(), query("p1", "ping", map[string]string{"id": myID}))
	if m.Y != "r" || m.T != "p1" || m.R.ID != string(nid[:]) {
		t.Fatalf("ping reply %+v", m)
	}
	if m.IP != compactAddr(c.addr()) {
		t.Fatalf("reply ip %q, want our address", m.IP)
	}
	// We answered a ping from an unknown node: it pings us back to verify us.
	if b, _, ok := c.recv(2 * time.Second); ok {
		pm, err := decodeMsg(b)
		if err != nil || pm.Q != "ping" {
			t.Fatalf("expected a verification ping, got %q", b)
		}
		c.send(n.Addr(), "d1:rd2:id"+bstr(myID)+"e1:t"+bstr(pm.T)+"1:y1:re")
	} else {
		t.Fatal("no verification ping")
	}

	m, _ = c.ask(n.Addr(), query("f1", "find_node", map[string]string{"id": myID, "target": ih}))
	if m.Y != "r" {
		t.Fatalf("find_node reply %+v", m)
	}
	m, _ = c.ask(n.Addr(), query("g1", "get_peers", map[string]string{"id": myID, "info_hash": ih}))
	if m.Y != "r" || len(m.R.Token) != tokenLen || len(m.R.Values) != 0 {
		t.Fatalf("get_peers reply %+v", m.R)
	}
	token := m.R.Token

	errCases := []struct {
		name string
		q    string
		code int
	}{
		{"unknown method", query("e1", "vote", map[string]string{"id": myID}), ErrCodeMethod},
		{"short id", query("e2", "ping", map[string]string{"id": "short"}), ErrCodeProtocol},
		{"no target", query("e3", "find_node", map[string]string{"id": myID}), ErrCodeProtocol},
		{"no info_hash", query("e4", "get_peers", map[string]string{"id": myID}), ErrCodeProtocol},
		{"bad token", query("e5", "announce_peer", map[string]string{"id": myID, "info_hash": ih, "port": "1234", "token": "12345678"}), ErrCodeProtocol},
		{"bad port", query("e6", "announce_peer", map[string]string{"id": myID, "info_hash": ih, "port": "70000", "token": token}), ErrCodeProtocol},
	}
	for _, tc := range errCases {
		m, _ := c.ask(n.Addr(), tc.q)
		if m.Y != "e" || m.remoteError().Code != tc.code {
			t.Errorf("%s: reply %+v, want error %d", tc.name, m, tc.code)
		}
	}

	m, _ = c.ask(n.Addr(), query("a1", "announce_peer", map[string]string{"id": myID, "info_hash": ih, "port": "1234", "token": token}))
	if m.Y != "r" {
		t.Fatalf("announce_peer reply %+v", m)
	}
	m, _ = c.ask(n.Addr(), query("a2", "announce_peer", map[string]string{"id": myID, "info_hash": ih, "implied_port": "1", "port": "1", "token": token}))
	if m.Y != "r" {
		t.Fatalf("announce_peer implied_port reply %+v", m)
	}
	m, _ = c.ask(n.Addr(), query("g2", "get_peers", map[string]string{"id": myID, "info_hash": ih}))
	got := parseValues(m.R.Values, 10)
	want := map[netip.AddrPort]bool{netip.AddrPortFrom(c.addr().Addr(), 1234): true, c.addr(): true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Fatalf("values %v, want %v", got, want)
	}

	// Malformed datagrams get no answer and are counted.
	before := n.Stats().Dropped
	for _, junk := range []string{"", "x", "d1:t2:aa1:y1:qe", "d1:ad2:id99999999:e1:q4:ping1:t2:aa1:y1:qe", "i5e"} {
		c.send(n.Addr(), junk)
	}
	if b, _, ok := c.recv(200 * time.Millisecond); ok {
		t.Fatalf("reply to junk: %q", b)
	}
	if d := n.Stats().Dropped - before; d != 5 {
		t.Fatalf("dropped %d of 5 bad datagrams", d)
	}
	if s := n.Stats(); s.InfoHashes != 1 || s.StoredPeers != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAmplificationBound(t *testing.T) {
	ih := randomID()
	// loaded returns a node storing 200 peers for ih and knowing 200 verified
	// nodes; verified, if valid, is put in its table first.
	loaded := func(host int, verified nodeInfo) *Node {
		n := newTestNode(t, host, []string{}, nil)
		now := time.Now()
		n.mu.Lock()
		if verified.Addr.IsValid() {
			n.tables[fam4].seen(verified, true, now)
		}
		for i := 0; i < 200; i++ {
			n.store.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)}), 1000), now)
			n.tables[fam4].seen(nodeInfo{ID: randomID(), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), 1)}, true, now)
		}
		n.mu.Unlock()
		return n
	}

	n := loaded(42, nodeInfo{})
	c := newRawNode(t, 43)
	myID := randomIDString()
	for _, q := range []string{
		query("a", "get_peers", map[string]string{"id": myID, "info_hash": string(ih[:])}),
		query("b", "find_node", map[string]string{"id": myID, "target": string(ih[:])}),
		query("c", "ping", map[string]string{"id": myID}),
	} {
		m, size := c.ask(n.Addr(), q)
		if size > ampFactor*len(q) {
			t.Errorf("%s: %d-byte reply to a %d-byte query from an unverified sender", m.T, size, len(q))
		}
		if m.T == "a" && len(m.R.Values) == 0 {
			t.Errorf("get_peers reply carries no values at all")
		}
	}

	// A verified node gets the full answer, still within one datagram.
	n2 := loaded(44, nodeInfo{ID: [20]byte([]byte(myID)), Addr: c.addr()})
	q := query("d", "get_peers", map[string]string{"id": myID, "info_hash": string(ih[:])})
	m, size := c.ask(n2.Addr(), q)
	if size > maxReply || len(m.R.Values) != maxValues || len(m.R.Nodes) != bucketSize*nodeInfoLen {
		t.Fatalf("verified reply: %d bytes, %d values, %d node bytes", size, len(m.R.Values), len(m.R.Nodes))
	}
	t.Logf("get_peers reply of %d bytes to a verified node, to a %d-byte query", size, len(q))
}

func TestRateLimit(t *testing.T) {
	n := newTestNode(t, 54, []string{}, func(c *Config) { c.QueryRate = 5 })
	c := newRawNode(t, 45)
	myID := randomIDString()
	for i := 0; i < 30; i++ {
		c.send(n.Addr(), query(fmt.Sprint(i), "find_node", map[string]string{"id": myID, "target": myID}))
	}
	replies := 0
	for {
		b, _, ok := c.recv(300 * time.Millisecond)
		if !ok {
			break
		}
		if m, err := decodeMsg(b); err == nil && m.Y == "r" {
			replies++
		}
	}
	if replies < 5 || replies > 10 { // the burst may straddle two windows
		t.Fatalf("%d replies to 30 queries at rate 5/s", replies)
	}
	if d := n.Stats().Dropped; d < 20 {
		t.Fatalf("dropped %d", d)
	}
}

func TestTransactions(t *testing.T) {
	n := newTestNode(t, 46, []string{}, nil)
	peer := newRawNode(t, 47)
	liar := newRawNode(t, 48)
	peerID := randomIDString()

	type result struct {
		r   *msgReturn
		err error
	}
	run := func() chan result {
		ch := make(chan result, 1)
		go func() {
			r, err := n.query(context.Background(), peer.addr(), qPing, &msgArgs{})
			ch <- result{r, err}
		}()
		return ch
	}

	ch := run()
	b, _, ok := peer.recv(2 * time.Second)
	if !ok {
		t.Fatal("query not sent")
	}
	q, err := decodeMsg(b)
	if err != nil || q.Q != "ping" || len(q.T) != 4 {
		t.Fatalf("query %q: %v", b, err)
	}
	before := n.Stats().Dropped
	// Wrong transaction ID, and the right one from the wrong address: dropped.
	peer.send(n.Addr(), "d1:rd2:id"+bstr(peerID)+"e1:t2:zz1:y1:re")
	liar.send(n.Addr(), "d1:rd2:id"+bstr(peerID)+"e1:t"+bstr(q.T)+"1:y1:re")
	time.Sleep(100 * time.Millisecond)
	select {
	case res := <-ch:
		t.Fatalf("query completed by a forged reply: %+v", res)
	default:
	}
	if d := n.Stats().Dropped - before; d != 2 {
		t.Fatalf("dropped %d forged replies, want 2", d)
	}
	peer.send(n.Addr(), "d1:rd2:id"+bstr(peerID)+"e1:t"+bstr(q.T)+"1:y1:re")
	res := <-ch
	if res.err != nil || res.r.ID != peerID {
		t.Fatalf("query = %+v", res)
	}
	n.mu.Lock()
	c := n.tables[fam4].byAddr[peer.addr()]
	n.mu.Unlock()
	if c == nil || !c.verified() {
		t.Fatal("answering node not in the table as verified")
	}

	// KRPC errors reach the caller.
	for _, code := range []int{ErrCodeGeneric, ErrCodeServer, ErrCodeProtocol, ErrCodeMethod} {
		ch := run()
		b, _, _ := peer.recv(2 * time.Second)
		q, _ := decodeMsg(b)
		peer.send(n.Addr(), string(encodeMsg(errorMsg(q.T, code, "nope"))))
		res := <-ch
		var ke *KRPCError
		if !errors.As(res.err, &ke) || ke.Code != code || ke.Msg != "nope" {
			t.Fatalf("error %d: got %v", code, res.err)
		}
	}

	// A late reply after a timeout is dropped.
	ch = run()
	b, _, _ = peer.recv(2 * time.Second)
	q, _ = decodeMsg(b)
	if res := <-ch; !errors.Is(res.err, errTimeout) {
		t.Fatalf("want timeout, got %v", res.err)
	}
	before = n.Stats().Dropped
	peer.send(n.Addr(), "d1:rd2:id"+bstr(peerID)+"e1:t"+bstr(q.T)+"1:y1:re")
	time.Sleep(100 * time.Millisecond)
	if n.Stats().Dropped != before+1 {
		t.Fatal("late reply not dropped")
	}
}

func TestReadOnly(t *testing.T) {
	ro := newTestNode(t, 49, []string{}, func(c *Config) { c.ReadOnly = true })
	c := newRawNode(t, 50)
	myID := randomIDString()
	c.send(ro.Addr(), query("p", "ping", map[string]string{"id": myID}))
	if b, _, ok := c.recv(300 * time.Millisecond); ok {
		t.Fatalf("read-only node answered: %q", b)
	}
	go ro.query(context.Background(), c.addr(), qPing, &msgArgs{})
	b, _, ok := c.recv(2 * time.Second)
	if !ok {
		t.Fatal("no query from the read-only node")
	}
	m, err := decodeMsg(b)
	if err != nil || m.RO != 1 {
		t.Fatalf("read-only query %q lacks ro=1", b)
	}
	// A normal node keeps read-only queriers out of its table.
	n := newTestNode(t, 51, []string{}, nil)
	c.ask(n.Addr(), "d1:ad2:id"+bstr(myID)+"e1:q4:ping2:roi1e1:t2:xx1:y1:qe")
	if n.Stats().Nodes != 0 {
		t.Fatal("read-only node added to the table")
	}
}

func TestAddNodeAndClose(t *testing.T) {
	a := newTestNode(t, 52, []string{}, nil)
	b := newTestNode(t, 53, []string{}, nil)
	a.AddNode(b.Addr())
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats().GoodNodes == 0 {
		if time.Now().After(deadline) {
			t.Fatal("AddNode did not add an answering node")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.GetPeers(context.Background(), randomID(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetPeers after Close: %v", err)
	}
	a.AddNode(b.Addr()) // must not panic or start anything
}

func randomIDString() string {
	id := randomID()
	return string(id[:])
}
