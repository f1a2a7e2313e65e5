package dht

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// knowNodes builds a node (no socket, no goroutines) and tells it about
// count nodes with random IDs on distinct public addresses, as if each had
// answered a query: the routing table keeps what k-buckets allow, the
// replacement caches fill up.
func knowNodes(count int) *Node {
	n := newNode(Config{Bootstrap: []string{}}, &recordConn{}, netip.MustParseAddrPort("127.0.0.1:6881"), nil)
	n.cancel()
	r := rand.New(rand.NewPCG(11, 12))
	now := time.Now()
	n.mu.Lock()
	for i := 0; i < count; i++ {
		ip := netip.AddrFrom4([4]byte{byte(1 + r.IntN(200)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
		n.tables[fam4].seen(nodeInfo{ID: randID(r), Addr: netip.AddrPortFrom(ip, uint16(1024+r.IntN(60000)))}, true, now)
	}
	n.mu.Unlock()
	return n
}

// fillStorage stores the maximum number of announced peers.
func fillStorage(n *Node) {
	now := time.Now()
	n.mu.Lock()
	for h := 0; h < n.cfg.MaxInfoHashes; h++ {
		ih := [20]byte{byte(h >> 8), byte(h)}
		for p := 0; p < n.cfg.MaxPeersPerInfoHash; p++ {
			n.store.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(h >> 8), byte(h), byte(p)}), 6881), now)
		}
	}
	n.mu.Unlock()
}

// TestMemory reports the heap a node holds after hearing of 10,000 nodes,
// and with its announce storage full, and checks both stay within budget.
func TestMemory(t *testing.T) {
	before := heapNow()
	n := knowNodes(10000)
	tableHeap := heapNow() - before
	s := n.Stats()
	repl := 0
	for _, b := range n.tables[fam4].buckets {
		repl += len(b.repl)
	}
	t.Logf("10,000 nodes offered: %d in the table (%d buckets) + %d replacement candidates, heap %d KiB",
		s.Nodes, s.Buckets, repl, tableHeap/1024)
	fillStorage(n)
	fullHeap := heapNow() - before
	s = n.Stats()
	t.Logf("plus full storage (%d info-hashes x %d peers = %d peers): heap %d KiB",
		s.InfoHashes, n.cfg.MaxPeersPerInfoHash, s.StoredPeers, fullHeap/1024)
	runtime.KeepAlive(n)

	// The table's own bound: every one of the 160 buckets full, with a full
	// replacement cache (IDs at every depth from ours).
	before = heapNow()
	w := newNode(Config{Bootstrap: []string{}}, &recordConn{}, netip.MustParseAddrPort("127.0.0.1:6881"), nil)
	w.cancel()
	r := rand.New(rand.NewPCG(13, 14))
	now := time.Now()
	w.mu.Lock()
	for depth := 0; depth < maxBuckets; depth++ {
		for i := 0; i < 3*bucketSize; i++ {
			w.tables[fam4].seen(nodeInfo{ID: randomIDWithPrefix(w.id, depth), Addr: randomAddr(r)}, true, now)
		}
	}
	w.mu.Unlock()
	worstHeap := heapNow() - before
	ws := w.Stats()
	t.Logf("table at its bound: %d nodes in %d buckets, heap %d KiB", ws.Nodes, ws.Buckets, worstHeap/1024)
	runtime.KeepAlive(w)
	if tableHeap > 2<<20 || worstHeap > 4<<20 {
		t.Errorf("table with 10,000 nodes known uses %d bytes, budget 2 MiB", tableHeap)
	}
	if fullHeap > 32<<20 {
		t.Errorf("node at its storage bounds uses %d bytes, budget 32 MiB", fullHeap)
	}
}

func BenchmarkMemory10kNodes(b *testing.B) {
	var heap uint64
	for i := 0; i < b.N; i++ {
		before := heapNow()
		n := knowNodes(10000)
		heap = heapNow() - before
		runtime.KeepAlive(n)
	}
	b.ReportMetric(float64(heap), "heap-bytes")
}

func BenchmarkClosest(b *testing.B) {
	n := knowNodes(10000)
	target := randomID()
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.tables[fam4].closest(target, bucketSize, true, now)
	}
}

func BenchmarkHandleGetPeers(b *testing.B) {
	conn := &recordConn{}
	n := newNode(Config{Bootstrap: []string{}, QueryRate: 1 << 30}, conn, netip.MustParseAddrPort("127.0.0.1:6881"), nil)
	n.cancel()
	from := netip.MustParseAddrPort("127.0.0.3:6881")
	q := []byte(query("aa", "get_peers", map[string]string{"id": randomIDString(), "info_hash": randomIDString()}))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		conn.writes = conn.writes[:0]
		n.handlePacket(from, q)
	}
}
