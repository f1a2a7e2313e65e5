package dht

import (
	"net"
	"net/netip"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// recordConn is a packetConn that keeps what the node writes and never
// delivers anything.
type recordConn struct {
	writes [][]byte
}

func (c *recordConn) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, net.ErrClosed
}

func (c *recordConn) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}

func (c *recordConn) Close() error { return nil }

// fuzzSeeds are FuzzKRPC's seeds, the datagrams its corpus starts from:
// every message kind, with and without their optional keys, and a few
// broken ones.
func fuzzSeeds() []string {
	id := "abcdefghij0123456789"
	return []string{
		bepPing, bepPingResp, bepFindNode, bepGetPeers, bepGetPeersResp, bepAnnounce, bepError,
		"d1:ad2:id20:" + id + "9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
		"d1:rd2:id20:mnopqrstuvwxyz1234565:nodes52:" + id + "\x7f\x00\x00\x03\x1a\xe1" + id[:19] + "X\x0a\x00\x00\x01\x1a\xe2e1:t2:aa1:y1:re",
		"d1:rd2:id20:mnopqrstuvwxyz1234566:nodes638:" + id + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1e1:t2:aa1:y1:re",
		"d2:ip6:\x7f\x00\x00\x01\x1a\xe11:rd2:id20:mnopqrstuvwxyz1234565:token8:aoeusnth6:valuesl6:\x7f\x00\x00\x05\x04\xd2ee1:t4:\x00\x00\x00\x011:v4:LT\x02\x001:y1:re",
		"d1:ad2:id20:" + id + "6:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node2:roi1e1:t2:aa1:y1:qe",
		"d1:ad2:id20:" + id + "e1:q4:vote1:t2:aa1:y1:qe",
		"d1:eli204e14:method unknowne1:t4:\x00\x00\x00\x011:y1:ee",
		"d1:eli202ee1:t2:aa1:y1:ee",
		"d1:ad2:id5:shorte1:q4:ping1:t2:aa1:y1:qe",
		"d1:t2:aa1:y1:re",
		"d1:ad2:id99999999999:xe1:q4:ping1:t2:aa1:y1:qe",
		"llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllleeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
		"",
	}
}

// FuzzKRPC feeds datagrams to handlePacket, the function the socket reader
// calls, with transactions outstanding so replies are matched too. Every
// datagram the node writes back must decode and respect the reply bounds;
// the routing table must keep its invariants.
func FuzzKRPC(f *testing.F) {
	var seeds [][]byte
	for _, s := range fuzzSeeds() {
		seeds = append(seeds, []byte(s))
	}
	fuzztest.Seeds(f, seeds)
	conn := &recordConn{}
	// A node of both families (a dual-stack socket), so "want" and
	// "nodes6" are exercised too.
	n := newNode(Config{Bootstrap: []string{}}, conn, netip.MustParseAddrPort("[::]:6881"), nil)
	n.cancel() // no background goroutines: pings are skipped
	from := netip.MustParseAddrPort("127.0.0.3:6881")
	iter := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n.mu.Lock()
		for _, tid := range []string{"aa", "\x00\x00\x00\x01"} {
			n.txns[tid] = &txn{addr: from, ch: make(chan reply, 1)}
		}
		c := n.tables[fam4].byAddr[from]
		verified := c != nil && c.verified()
		n.mu.Unlock()
		conn.writes = conn.writes[:0]

		n.handlePacket(from, data)

		bound := ampFactor * len(data)
		if verified {
			bound = maxReply
		}
		for _, w := range conn.writes {
			m, err := decodeMsg(w)
			if err != nil {
				t.Fatalf("node wrote an undecodable datagram %q: %v", w, err)
			}
			if len(w) > bound || len(w) > maxReply {
				t.Fatalf("%d-byte reply to a %d-byte datagram (verified %v): %q", len(w), len(data), verified, w)
			}
			if m.Y == "q" {
				t.Fatalf("a query provoked a query")
			}
		}
		if iter++; iter%64 == 0 {
			n.mu.Lock()
			checkTable(t, n.tables[fam4])
			checkTable(t, n.tables[fam6])
			n.mu.Unlock()
		}
	})
}
