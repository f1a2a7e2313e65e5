package dht

import (
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"
	"time"
)

// checkTable verifies the structural invariants of t.
func checkTable(t testing.TB, tb *table) {
	t.Helper()
	if len(tb.buckets) == 0 || len(tb.buckets) > maxBuckets {
		t.Fatalf("%d buckets", len(tb.buckets))
	}
	count := 0
	ids := make(map[[20]byte]bool)
	for i, b := range tb.buckets {
		if len(b.nodes) > bucketSize {
			t.Fatalf("bucket %d holds %d nodes", i, len(b.nodes))
		}
		if len(b.repl) > bucketSize {
			t.Fatalf("bucket %d holds %d replacements", i, len(b.repl))
		}
		for _, c := range b.nodes {
			cpl := commonPrefixLen(tb.self, c.ID)
			last := i == len(tb.buckets)-1
			if (!last && cpl != i) || (last && cpl < i) {
				t.Fatalf("node with prefix %d in bucket %d of %d", cpl, i, len(tb.buckets))
			}
			if c.ID == tb.self {
				t.Fatal("own ID in the table")
			}
			if ids[c.ID] {
				t.Fatalf("duplicate ID %x", c.ID)
			}
			ids[c.ID] = true
			if tb.byAddr[c.Addr] != c {
				t.Fatalf("byAddr out of sync for %v", c.Addr)
			}
			count++
		}
		for _, c := range b.repl {
			if tb.bucketIndex(c.ID) != i {
				t.Fatalf("replacement in the wrong bucket")
			}
		}
	}
	if count != tb.count || count != len(tb.byAddr) || count > tb.maxNodes {
		t.Fatalf("count %d, recorded %d, byAddr %d, max %d", count, tb.count, len(tb.byAddr), tb.maxNodes)
	}
}

func randomAddr(r *rand.Rand) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), uint16(1+r.IntN(65534)))
}

func randID(r *rand.Rand) [20]byte {
	var id [20]byte
	for i := range id {
		id[i] = byte(r.IntN(256))
	}
	return id
}

func TestTableRandomNodes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1e9, 0)
	self := randID(r)
	tb := newTable(self, DefaultMaxNodes)
	var all []nodeInfo
	for i := 0; i < 5000; i++ {
		ni := nodeInfo{ID: randID(r), Addr: randomAddr(r)}
		if i%7 == 0 { // some near our own ID, to force deep splits
			ni.ID = randomIDWithPrefix(self, 8+r.IntN(40))
		}
		all = append(all, ni)
		tb.seen(ni, true, now)
		if i%500 == 0 {
			checkTable(t, tb)
		}
	}
	checkTable(t, tb)
	t.Logf("5000 nodes offered: %d kept in %d buckets", tb.count, len(tb.buckets))
	if len(tb.buckets) < 10 || tb.count < 80 {
		t.Fatalf("table too small: %d nodes, %d buckets", tb.count, len(tb.buckets))
	}

	// closest against a brute-force sort of the table's contents.
	var inTable []nodeInfo
	for _, b := range tb.buckets {
		for _, c := range b.nodes {
			inTable = append(inTable, c.nodeInfo)
		}
	}
	for trial := 0; trial < 200; trial++ {
		target := randID(r)
		if trial%3 == 0 {
			target = all[r.IntN(len(all))].ID
		}
		want := append([]nodeInfo(nil), inTable...)
		sort.Slice(want, func(i, j int) bool { return xorCmp(target, want[i].ID, want[j].ID) < 0 })
		got := tb.closest(target, bucketSize, false, now)
		if len(got) != bucketSize {
			t.Fatalf("closest returned %d", len(got))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("trial %d: closest[%d] = %x, want %x", trial, i, got[i].ID, want[i].ID)
			}
		}
	}

	// A table bound below what the ID space would allow is respected.
	small := newTable(self, 50)
	for _, ni := range all {
		small.seen(ni, true, now)
	}
	checkTable(t, small)
	if small.count != 50 {
		t.Fatalf("bounded table holds %d, want 50", small.count)
	}
}

func TestTableSplitKeepsNearNodes(t *testing.T) {
	self := [20]byte{}
	tb := newTable(self, DefaultMaxNodes)
	now := time.Unix(1e9, 0)
	r := rand.New(rand.NewPCG(3, 4))
	// Nodes at every depth: the table must keep k per depth near us.
	for depth := 0; depth < 40; depth++ {
		for i := 0; i < 2*bucketSize; i++ {
			tb.seen(nodeInfo{ID: randomIDWithPrefix(self, depth), Addr: randomAddr(r)}, true, now)
		}
	}
	checkTable(t, tb)
	if len(tb.buckets) < 40 {
		t.Fatalf("%d buckets, want >= 40", len(tb.buckets))
	}
	for i, b := range tb.buckets[:39] {
		if len(b.nodes) != bucketSize {
			t.Fatalf("bucket %d holds %d", i, len(b.nodes))
		}
	}
}

func TestRandomIDWithPrefix(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 1000; i++ {
		self, depth := randID(r), r.IntN(160)
		if got := commonPrefixLen(self, randomIDWithPrefix(self, depth)); got != depth {
			t.Fatalf("prefix %d, want %d", got, depth)
		}
	}
}

func TestNodeStates(t *testing.T) {
	now := time.Unix(1e9, 0)
	c := &contact{}
	if c.state(now) != stateQuestionable {
		t.Fatal("never-answered node is not questionable")
	}
	c.lastResponse = now
	if c.state(now.Add(14*time.Minute)) != stateGood {
		t.Fatal("answered 14 minutes ago is not good")
	}
	if c.state(now.Add(16*time.Minute)) != stateQuestionable {
		t.Fatal("answered 16 minutes ago is not questionable")
	}
	c.lastQuery = now.Add(10 * time.Minute)
	if c.state(now.Add(16*time.Minute)) != stateGood {
		t.Fatal("answered once and queried recently is not good")
	}
	c.fails = maxFails
	if c.state(now) != stateBad {
		t.Fatal("node failing twice is not bad")
	}
}

// fullBucket returns a table whose first bucket (IDs differing from self
// in the first bit) holds k verified nodes answered at now.
func fullBucket(t *testing.T, now time.Time) (*table, []nodeInfo) {
	self := [20]byte{}
	tb := newTable(self, DefaultMaxNodes)
	// Force a split so bucket 0 is not the last one.
	tb.split()
	r := rand.New(rand.NewPCG(7, 8))
	var in []nodeInfo
	for i := 0; i < bucketSize; i++ {
		ni := nodeInfo{ID: randomIDWithPrefix(self, 0), Addr: randomAddr(r)}
		tb.seen(ni, true, now)
		in = append(in, ni)
	}
	if len(tb.buckets[0].nodes) != bucketSize {
		t.Fatalf("bucket 0 holds %d", len(tb.buckets[0].nodes))
	}
	return tb, in
}

func TestTableReplacement(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb, in := fullBucket(t, now)
	r := rand.New(rand.NewPCG(9, 10))
	newcomer := nodeInfo{ID: randomIDWithPrefix(tb.self, 0), Addr: randomAddr(r)}

	// All good: the newcomer waits, nobody is pinged.
	if ping := tb.seen(newcomer, true, now); len(ping) != 0 {
		t.Fatalf("pinged %d good nodes", len(ping))
	}
	if tb.find(newcomer.ID) != nil || len(tb.buckets[0].repl) != 1 {
		t.Fatal("newcomer should wait in the replacement cache")
	}

	// 16 minutes later they are questionable: a verified newcomer gets them pinged.
	later := now.Add(16 * time.Minute)
	ping := tb.seen(newcomer, true, later)
	if len(ping) != bucketSize {
		t.Fatalf("pinged %d questionable nodes, want %d", len(ping), bucketSize)
	}
	if again := tb.seen(newcomer, true, later); len(again) != 0 {
		t.Fatal("nodes already being pinged were pinged again")
	}
	// One answers, one fails twice: the failing one is replaced by the newcomer.
	tb.seen(in[0], true, later)
	tb.failed(in[1].Addr, later)
	if tb.find(in[1].ID) == nil {
		t.Fatal("one failure already evicted a node")
	}
	tb.failed(in[1].Addr, later)
	if tb.find(in[1].ID) != nil {
		t.Fatal("bad node not replaced")
	}
	if tb.find(newcomer.ID) == nil {
		t.Fatal("replacement not promoted")
	}
	checkTable(t, tb)
}

func TestTableAddressRules(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb := newTable([20]byte{}, DefaultMaxNodes)
	a := nodeInfo{ID: [20]byte{0x80, 1}, Addr: netip.MustParseAddrPort("10.0.0.1:1000")}
	tb.seen(a, true, now)
	// Same ID from another address: ignored while the first is good.
	tb.seen(nodeInfo{ID: a.ID, Addr: netip.MustParseAddrPort("10.0.0.2:1000")}, true, now)
	if c := tb.find(a.ID); c == nil || c.Addr != a.Addr {
		t.Fatal("a good node's address was hijacked")
	}
	// Another ID at the same address, by query only: ignored.
	tb.seen(nodeInfo{ID: [20]byte{0x80, 2}, Addr: a.Addr}, false, now)
	if tb.count != 1 {
		t.Fatal("second ID at one address was added")
	}
	// Public IPs hold one entry each; loopback and private ones are exempt.
	tb.seen(nodeInfo{ID: [20]byte{0x80, 3}, Addr: netip.MustParseAddrPort("1.2.3.4:1")}, true, now)
	tb.seen(nodeInfo{ID: [20]byte{0x80, 4}, Addr: netip.MustParseAddrPort("1.2.3.4:2")}, true, now)
	tb.seen(nodeInfo{ID: [20]byte{0x80, 5}, Addr: netip.MustParseAddrPort("127.0.0.1:1")}, true, now)
	tb.seen(nodeInfo{ID: [20]byte{0x80, 6}, Addr: netip.MustParseAddrPort("127.0.0.1:2")}, true, now)
	if tb.count != 4 {
		t.Fatalf("count %d, want 4", tb.count)
	}
	// Unverified nodes are not handed to others.
	tb.seen(nodeInfo{ID: [20]byte{0x80, 7}, Addr: netip.MustParseAddrPort("10.9.9.9:1")}, false, now)
	for _, ni := range tb.closest([20]byte{0x80, 7}, 20, true, now) {
		if ni.ID == [20]byte{0x80, 7} {
			t.Fatal("unverified node returned to others")
		}
	}
	checkTable(t, tb)
}

func TestTokens(t *testing.T) {
	now := time.Unix(1e9, 0)
	tk := newTokens(now)
	ip := netip.MustParseAddr("127.0.0.5")
	other := netip.MustParseAddr("127.0.0.6")
	tok := tk.make(ip)
	if len(tok) != tokenLen {
		t.Fatalf("token of %d bytes", len(tok))
	}
	if !tk.valid(tok, ip) {
		t.Fatal("fresh token invalid")
	}
	if tk.valid(tok, other) {
		t.Fatal("token valid from another IP")
	}
	if tk.valid(tok[:4], ip) || tk.valid("", ip) {
		t.Fatal("truncated token valid")
	}
	tk.maybeRotate(now.Add(tokenRotation - time.Second))
	if tk.make(ip) != tok {
		t.Fatal("rotated too early")
	}
	tk.maybeRotate(now.Add(tokenRotation))
	if tk.make(ip) == tok {
		t.Fatal("did not rotate")
	}
	if !tk.valid(tok, ip) {
		t.Fatal("previous secret's token invalid")
	}
	if tk.valid(tok, other) {
		t.Fatal("previous secret's token valid from another IP")
	}
	tk.maybeRotate(now.Add(2 * tokenRotation))
	if tk.valid(tok, ip) {
		t.Fatal("token two rotations old still valid")
	}
	// IPv4-mapped IPv6 is the same requester.
	if !tk.valid(tk.make(ip), netip.AddrFrom16(ip.As16())) {
		t.Fatal("mapped address not treated as the same IP")
	}
}

func TestStoreBounds(t *testing.T) {
	now := time.Unix(1e9, 0)
	s := newStore(3, 4)
	ih := func(b byte) [20]byte { return [20]byte{b} }
	for i := 0; i < 10; i++ {
		s.add(ih(1), netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1000+i)), now.Add(time.Duration(i)*time.Second))
	}
	if got := len(s.get(ih(1), fam4, 100, now)); got != 4 || s.peers != 4 {
		t.Fatalf("kept %d peers (counted %d), want 4", got, s.peers)
	}
	for i := byte(2); i < 10; i++ {
		s.add(ih(i), netip.MustParseAddrPort("10.0.0.2:1"), now.Add(time.Minute))
	}
	if len(s.hashes) != 3 {
		t.Fatalf("kept %d info-hashes, want 3", len(s.hashes))
	}
	total := 0
	for _, ps := range s.hashes {
		total += len(ps.peers)
	}
	if total != s.peers {
		t.Fatalf("peer count %d, actual %d", s.peers, total)
	}
	if got := s.get(ih(9), fam4, 2, now.Add(time.Minute)); len(got) != 1 {
		t.Fatalf("get = %v", got)
	}
	s.expire(now.Add(time.Minute + peerTTL))
	if len(s.hashes) != 0 || s.peers != 0 {
		t.Fatalf("expire left %d hashes, %d peers", len(s.hashes), s.peers)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newLimiter(3, 2)
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	for i := 0; i < 3; i++ {
		if !l.allow(a, now) {
			t.Fatalf("query %d refused", i)
		}
	}
	if l.allow(a, now) {
		t.Fatal("fourth query in a second allowed")
	}
	if !l.allow(b, now) {
		t.Fatal("second IP refused")
	}
	if l.allow(c, now) {
		t.Fatal("IP beyond the map bound allowed")
	}
	if !l.allow(a, now.Add(time.Second)) || !l.allow(c, now.Add(time.Second)) {
		t.Fatal("new window did not reset")
	}
}

func TestBEP42(t *testing.T) {
	// The examples of BEP 42: IP, r, and the node ID's first three bytes
	// (of which 21 bits are fixed).
	tests := []struct {
		ip     string
		r      byte
		prefix [3]byte
	}{
		{"124.31.75.21", 1, [3]byte{0x5f, 0xbf, 0xbf}},
		{"21.75.31.124", 86, [3]byte{0x5a, 0x3c, 0xe9}},
		{"65.23.51.170", 22, [3]byte{0xa5, 0xd4, 0x32}},
		{"84.124.73.14", 65, [3]byte{0x1b, 0x03, 0x21}},
		{"43.213.53.83", 90, [3]byte{0xe5, 0x6f, 0x6c}},
	}
	for _, tc := range tests {
		ip := netip.MustParseAddr(tc.ip)
		var id [20]byte
		copy(id[:], tc.prefix[:])
		id[19] = tc.r
		if !bep42Valid(id, ip) {
			t.Errorf("%s r=%d: example ID rejected (prefix %08x)", tc.ip, tc.r, bep42Prefix(ip, tc.r))
		}
		id[0] ^= 0x40
		if bep42Valid(id, ip) {
			t.Errorf("%s: altered ID accepted", tc.ip)
		}
		if gen := bep42ID(ip); !bep42Valid(gen, ip) {
			t.Errorf("%s: generated ID invalid", tc.ip)
		}
	}
	// Loopback, private and link-local nodes are never rejected.
	for _, s := range []string{"127.0.0.1", "127.0.0.77", "10.1.2.3", "192.168.1.1", "169.254.0.1", "::1", "fe80::1"} {
		if !bep42Valid(randomID(), netip.MustParseAddr(s)) {
			t.Errorf("%s rejected", s)
		}
	}
}
