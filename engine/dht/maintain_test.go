package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock           { c := &fakeClock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (n *Node) contactAt(a netip.AddrPort) *contact {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.tables[fam4].byAddr[a]; c != nil {
		cp := *c
		return &cp
	}
	return nil
}

// newManualNode is a node on 127.0.0.<host> whose clock the test sets and
// whose maintenance the test runs by calling maintain.
func newManualNode(t *testing.T, host int, clock *fakeClock, mod func(*Config)) *Node {
	t.Helper()
	cfg := Config{Bootstrap: []string{}, QueryTimeout: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(fmt.Sprintf("127.0.0.%d:0", host))))
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadState(cfg.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(cfg, uc, uc.LocalAddr().(*net.UDPAddr).AddrPort(), st)
	n.now = clock.now
	n.tokens = newTokens(clock.now())
	n.lastSave, n.lastExpire = clock.now(), clock.now()
	n.wg.Add(1)
	go n.readLoop()
	t.Cleanup(func() { n.Close() })
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMaintenance(t *testing.T) {
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "state")
	a := newManualNode(t, 60, clock, func(c *Config) { c.StatePath = path })
	b := newTestNode(t, 61, []string{}, nil)
	a.AddNode(b.Addr())
	waitFor(t, "b verified in a's table", func() bool { c := a.contactAt(b.Addr()); return c != nil && c.verified() })

	// 16 minutes on, b is questionable; maintenance pings it and it is good again.
	clock.add(16 * time.Minute)
	if c := a.contactAt(b.Addr()); c.state(clock.now()) != stateQuestionable {
		t.Fatal("b not questionable after 16 minutes")
	}
	out := a.Stats().QueriesOut
	a.maintain()
	waitFor(t, "b good again", func() bool { return a.contactAt(b.Addr()).state(clock.now()) == stateGood })
	if a.Stats().QueriesOut <= out {
		t.Fatal("maintenance sent no ping")
	}
	// It also saved the state and rotated the token secret.
	tok := func() string { a.mu.Lock(); defer a.mu.Unlock(); return a.tokens.make(b.Addr().Addr()) }
	before := tok()
	clock.add(tokenRotation)
	a.maintain()
	if tok() == before {
		t.Fatal("token secret not rotated")
	}
	st, err := loadState(path)
	if err != nil || st == nil || st.id != a.ID() || len(st.nodes) != 1 || st.nodes[0].Addr != b.Addr() {
		t.Fatalf("saved state %+v, %v", st, err)
	}

	// b goes away: unanswered pings (and the refresh lookup of its stale
	// bucket, which also asks b) make it bad.
	b.Close()
	for round := 0; a.contactAt(b.Addr()).state(clock.now()) != stateBad; round++ {
		if round == 3 {
			t.Fatalf("b not bad after 3 rounds: %+v", a.contactAt(b.Addr()))
		}
		fails := a.contactAt(b.Addr()).fails
		clock.add(16 * time.Minute)
		a.maintain()
		waitFor(t, "ping to time out", func() bool { return a.contactAt(b.Addr()).fails > fails })
		waitFor(t, "refresh to end", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return !a.refreshing[fam4] })
	}
}

func TestRebootstrapAndRefresh(t *testing.T) {
	nodes := testNet(t, 5)
	clock := newFakeClock()
	a := newManualNode(t, 62, clock, func(c *Config) { c.Bootstrap = []string{nodes[0].Addr().String()} })
	// No good node: maintenance bootstraps by itself.
	a.maintain()
	waitFor(t, "automatic bootstrap", func() bool { return a.Stats().GoodNodes >= 4 })
	waitFor(t, "bootstrap goroutine to finish", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return !a.booting })
	// Buckets untouched for 15 minutes are refreshed with a lookup.
	clock.add(goodFor)
	out := a.Stats().QueriesOut
	a.maintain()
	waitFor(t, "refresh lookup", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return !a.refreshing[fam4] })
	if a.Stats().QueriesOut <= out {
		t.Fatal("no refresh queries")
	}
}

func TestLookupPastDeadNodes(t *testing.T) {
	nodes := testNet(t, 8)
	n := nodes[3]
	// Poison n's table with nodes that never answer, nearest to the target.
	ih := randomID()
	var dead []*rawNode
	for i := 0; i < 6; i++ {
		dead = append(dead, newRawNode(t, 63+i))
	}
	now := time.Now()
	n.mu.Lock()
	for i, d := range dead {
		id := ih
		id[19] ^= byte(i + 1)
		n.tables[fam4].seen(nodeInfo{ID: id, Addr: d.addr()}, true, now)
	}
	n.mu.Unlock()
	if err := nodes[6].Announce(context.Background(), ih, 999, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	found := false
	err := n.GetPeers(context.Background(), ih, func(ps []netip.AddrPort) { found = true })
	took := time.Since(start)
	if err != nil || !found {
		t.Fatalf("GetPeers past dead nodes: found %v, err %v", found, err)
	}
	// Dead nodes turn slow after half the timeout and do not block the rest;
	// the lookup ends once they time out (one timeout, not one per node).
	if took > 3*n.cfg.QueryTimeout {
		t.Fatalf("lookup took %v with a %v query timeout", took, n.cfg.QueryTimeout)
	}
	t.Logf("lookup past 6 dead nodes took %v", took)
	for _, d := range dead {
		if c := n.contactAt(d.addr()); c != nil && c.fails == 0 {
			t.Fatal("dead node not charged a failure")
		}
	}
}

func TestFitReplyIPv6(t *testing.T) {
	to := netip.MustParseAddrPort("[2001:db8::1]:6881")
	nodes := []nodeInfo{{ID: [20]byte{1}, Addr: netip.MustParseAddrPort("[2001:db8::2]:1")}}
	m := fitReply("aa", &msgReturn{ID: string(make([]byte, 20))}, [2][]nodeInfo{fam6: nodes}, nil, to, "", maxReply)
	if m.R.Nodes != "" || len(m.R.Nodes6) != nodeInfo6Len || len(m.IP) != 18 {
		t.Fatalf("v6 reply: nodes %d nodes6 %d ip %d", len(m.R.Nodes), len(m.R.Nodes6), len(m.IP))
	}
	got, err := parseNodes(m.R.Nodes6, true, 8)
	if err != nil || got[0] != nodes[0] {
		t.Fatalf("nodes6 round trip: %v %v", got, err)
	}
}

// BenchmarkGetPeersLoopback reports the time of one get_peers lookup in a
// 20-node loopback network. The per-IP query limit is lifted: the
// benchmark asks the same few nodes far more often than a real client.
func BenchmarkGetPeersLoopback(b *testing.B) {
	nodes := testNetWith(b, 20, func(c *Config) { c.QueryRate = 1 << 20 })
	ih := randomID()
	if err := nodes[5].Announce(context.Background(), ih, 4321, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		found := false
		if err := nodes[15].GetPeers(context.Background(), ih, func([]netip.AddrPort) { found = true }); err != nil || !found {
			b.Fatalf("GetPeers: %v, found %v", err, found)
		}
	}
}
