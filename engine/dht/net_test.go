package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestNode starts a node on 127.0.0.<host> with the given bootstrap
// list (never the public default) and closes it at cleanup.
func newTestNode(t testing.TB, host int, bootstrap []string, mod func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		Listen:       fmt.Sprintf("127.0.0.%d:0", host),
		Bootstrap:    append([]string{}, bootstrap...),
		QueryTimeout: 500 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// testNet is a loopback network of our own nodes on 127.0.0.2, .3, ...
// all bootstrapped from the first.
func testNet(t testing.TB, size int) []*Node { return testNetWith(t, size, nil) }

// testNetWith is testNet with each node's Config passed through mod.
func testNetWith(t testing.TB, size int, mod func(*Config)) []*Node {
	t.Helper()
	nodes := []*Node{newTestNode(t, 2, []string{}, mod)}
	boot := []string{nodes[0].Addr().String()}
	for i := 1; i < size; i++ {
		nodes = append(nodes, newTestNode(t, 2+i, boot, mod))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, size)
	for i, n := range nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = n.Bootstrap(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d bootstrap: %v", i, err)
		}
	}
	// A second round lets early nodes learn of later ones; a node that
	// still knows few (a query timed out on a loaded machine: they get
	// 500 ms here) refreshes again, as the table's refresh would.
	for round := 0; round < 4; round++ {
		for _, n := range nodes {
			if round > 0 && n.Stats().Nodes >= 5 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.Bootstrap(ctx)
			}()
		}
		wg.Wait()
	}
	return nodes
}

func TestLoopbackNetwork(t *testing.T) {
	nodes := testNet(t, 20)
	for i, n := range nodes {
		if s := n.Stats(); s.Nodes < 5 {
			t.Errorf("node %d knows only %d nodes", i, s.Nodes)
		}
	}
	ih := randomID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := nodes[5].Announce(ctx, ih, 4321, nil); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	t.Logf("announce took %v", time.Since(start))

	want := netip.MustParseAddrPort("127.0.0.7:4321")
	found := false
	start = time.Now()
	err := nodes[15].GetPeers(ctx, ih, func(ps []netip.AddrPort) {
		for _, p := range ps {
			if p == want {
				found = true
			}
		}
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("GetPeers: %v", err)
	}
	if !found {
		t.Fatalf("GetPeers did not find %v", want)
	}
	t.Logf("get_peers lookup in a %d-node loopback net took %v", len(nodes), took)
	stored := 0
	for _, n := range nodes {
		stored += n.Stats().StoredPeers
	}
	if stored < 3 {
		t.Errorf("announce stored on %d nodes, want several", stored)
	}
}

func TestStatePersistence(t *testing.T) {
	nodes := testNet(t, 6)
	path := filepath.Join(t.TempDir(), "dht.state")
	n := newTestNode(t, 30, []string{nodes[0].Addr().String()}, func(c *Config) { c.StatePath = path })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	id, known := n.ID(), n.Stats().Nodes
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Reopened without any bootstrap node, it must know the network from its file.
	n2 := newTestNode(t, 30, []string{}, func(c *Config) { c.StatePath = path })
	if n2.ID() != id {
		t.Fatalf("ID changed across restart")
	}
	if got := n2.Stats().Nodes; got != known {
		t.Fatalf("reloaded %d nodes, saved %d", got, known)
	}
	if err := n2.Bootstrap(ctx); err != nil {
		t.Fatalf("Bootstrap from saved table: %v", err)
	}
}

func TestCorruptState(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":      "not bencode at all",
		"short id":     "d2:id3:abc5:nodes0:e",
		"huge length":  "d2:id99999999999:x5:nodes0:e",
		"ragged nodes": "d2:id20:abcdefghij01234567895:nodes7:1234567e",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			n := newTestNode(t, 31, []string{}, func(c *Config) { c.StatePath = path })
			if err := n.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st, err := loadState(path)
			if err != nil || st == nil || st.id != n.ID() {
				t.Fatalf("state not rewritten: %+v, %v", st, err)
			}
		})
	}
	// A state file in a folder that does not exist yet.
	path := filepath.Join(dir, "new", "sub", "dht.state")
	n := newTestNode(t, 32, []string{}, func(c *Config) { c.StatePath = path })
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestBootstrapByName(t *testing.T) {
	if ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil || len(ips) == 0 || ips[0].Unmap() != netip.MustParseAddr("127.0.0.1") {
		t.Skipf("localhost does not resolve to 127.0.0.1 here: %v %v", ips, err)
	}
	a := newTestNode(t, 1, []string{}, nil)
	b := newTestNode(t, 33, []string{
		"localhost:" + fmt.Sprint(a.Addr().Port()),
		"no-port",            // logged and skipped
		"127.0.0.1:notaport", // likewise
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Bootstrap(ctx); err != nil {
		t.Fatalf("Bootstrap via a host name: %v", err)
	}
}

// TestBootstrapResolvedOnce: lookups that start together (a node of both
// families bootstraps each, torrents look for peers) resolve the bootstrap
// names once between them, so a name that fails is logged once, not once
// per lookup.
func TestBootstrapResolvedOnce(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	n := newTestNode(t, 35, []string{"127.0.0.1:notaport"}, func(c *Config) {
		c.Logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(format, args...))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := n.Bootstrap(ctx); !errors.Is(err, ErrNoNodes) {
				t.Errorf("Bootstrap: %v, want ErrNoNodes", err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	bad := 0
	for _, l := range lines {
		if strings.Contains(l, "notaport") {
			bad++
		}
	}
	if bad != 1 {
		t.Errorf("the bad bootstrap address was logged %d times, want once: %q", bad, lines)
	}
}

func TestLookupErrors(t *testing.T) {
	lonely := newTestNode(t, 34, []string{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lonely.GetPeers(ctx, randomID(), nil); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("GetPeers with no nodes: %v", err)
	}
	if err := lonely.Bootstrap(ctx); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("Bootstrap with no nodes: %v", err)
	}
	if err := lonely.Announce(ctx, randomID(), 0, nil); err == nil {
		t.Fatal("Announce accepted port 0")
	}
	// A bootstrap node that never answers: ErrNoNodes after one timeout.
	dead := newRawNode(t, 35)
	n := newTestNode(t, 36, []string{dead.addr().String()}, nil)
	start := time.Now()
	if err := n.Announce(ctx, randomID(), 1000, nil); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("Announce via a dead bootstrap node: %v", err)
	}
	if took := time.Since(start); took > 3*n.cfg.QueryTimeout {
		t.Fatalf("took %v", took)
	}
	// A cancelled context ends a lookup with its error.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := n.GetPeers(cctx, randomID(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetPeers with a cancelled context: %v", err)
	}
}
