package engine

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/lsd"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestMagnetViaTracker: libtorrent seeds through opentracker; swarmfs,
// given only the magnet (with tr=), fetches the metadata and downloads
// byte-exact.
func TestMagnetViaTracker(t *testing.T) {
	f := newLTFixture(t, swarmtest.StandardFiles(), 32<<10, false)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2"})
	lt.AddTorrent(f.path, f.dir, true)
	lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)

	uri := swarmtest.Magnet(f.mi.InfoHash, "", f.tracker.HTTP)
	_, tor, dir := magnetLeecher(t, uri, Config{})
	waitInfo(t, tor, 30*time.Second)
	checkInfo(t, tor, f.mi)
	if mi := tor.MetaInfo(); len(mi.Trackers()) != 1 || mi.Trackers()[0][0] != f.tracker.HTTP {
		t.Errorf("MetaInfo trackers %v, want the magnet's", mi.Trackers())
	}
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// dhtNet starts n swarmfs clients whose DHT nodes form a loopback network
// (127.0.0.20, .21, ...), and returns the first node's address, the
// bootstrap for everyone else.
func dhtNet(tb testing.TB, n int) string {
	tb.Helper()
	var boot string
	for i := 0; i < n; i++ {
		cfg := Config{ListenAddr: fmt.Sprintf("127.0.0.%d:0", 20+i), DHT: true, DHTBootstrap: []string{}}
		if i > 0 {
			cfg.DHTBootstrap = []string{boot}
		}
		c := newClient(tb, cfg)
		if i == 0 {
			boot = c.DHT().Addr().String()
		}
	}
	return boot
}

// dhtConfig is a client on ip that joins the DHT through boot.
func dhtConfig(ip, boot string) Config {
	return Config{ListenAddr: ip + ":0", DHT: true, DHTBootstrap: []string{boot}}
}

// trackerless makes a libtorrent torrent for files with no tracker.
func trackerless(t *testing.T, files []swarmtest.FileSpec, pieceLength int) (fixture, string) {
	t.Helper()
	swarmtest.RequireTools(t, "libtorrent")
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	path, _ := swarmtest.MakeTorrent(t, root, nil, pieceLength)
	mi, err := metainfo.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, root: root, mi: mi}, path
}

// TestMagnetViaDHT: in a loopback DHT of swarmfs and libtorrent nodes, with
// no tracker anywhere, a libtorrent seeder announces a torrent on the DHT
// and swarmfs, given only the magnet, resolves the metadata and downloads
// byte-exact; then swarmfs seeds through the DHT alone and libtorrent
// fetches the magnet.
func TestMagnetViaDHT(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	boot := dhtNet(t, 3)

	t.Run("libtorrent seeds", func(t *testing.T) {
		f, path := trackerless(t, swarmtest.StandardFiles(), 32<<10)
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", DHT: true, DHTBootstrap: []string{boot}, NoTrackers: true})
		lt.AddTorrent(path, f.dir, true)
		lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
		lt.WaitDHTNodes(t, 1, 30*time.Second)
		lt.DHTAnnounce(f.mi.InfoHash, 0)

		_, tor, dir := magnetLeecher(t, swarmtest.Magnet(f.mi.InfoHash, ""), dhtConfig("127.0.0.30", boot))
		waitInfo(t, tor, 60*time.Second)
		checkInfo(t, tor, f.mi)
		waitComplete(t, tor, 60*time.Second)
		swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	})

	t.Run("swarmfs seeds", func(t *testing.T) {
		f, _ := trackerless(t, swarmtest.StandardFiles(), 32<<10)
		cfg := dhtConfig("127.0.0.31", boot)
		sc, tor := seeder(t, f, cfg)
		if sc.DHT() == nil {
			t.Fatal("no DHT node")
		}
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.3", DHT: true, DHTBootstrap: []string{boot}, NoTrackers: true})
		got := t.TempDir()
		lt.AddMagnet(swarmtest.Magnet(f.mi.InfoHash, ""), got)
		lt.WaitComplete(t, f.mi.InfoHash, 90*time.Second)
		swarmtest.VerifyTree(t, f.root, filepath.Join(got, "data"))
		if tor.Stats().Uploaded == 0 {
			t.Error("swarmfs reports no upload")
		}
	})
}

// knownPeers lists a torrent's candidates, read on its loop.
func knownPeers(t *testing.T, tor *Torrent) []netip.AddrPort {
	t.Helper()
	ch := make(chan []netip.AddrPort, 1)
	if !tor.post(func() {
		var out []netip.AddrPort
		for a := range tor.candidates {
			out = append(out, a)
		}
		ch <- out
	}) {
		t.Fatal("torrent closed")
	}
	return <-ch
}

// waitDialledFrom waits until tor has a connection that a peer on ip
// dialled (an incoming one) and returns how long that took; it fails t
// after timeout.
func waitDialledFrom(t *testing.T, tor *Torrent, ip netip.Addr, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ch := make(chan bool, 1)
		if !tor.post(func() {
			found := false
			for c := range tor.conns {
				found = found || c.incoming && c.addr.Addr() == ip
			}
			ch <- found
		}) {
			t.Fatal("torrent closed")
		}
		if <-ch {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("no peer on %v has dialled swarmfs after %v", ip, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPEX: a leecher that knows only the seeder learns the other leechers
// through it, within seconds.
func TestPEX(t *testing.T) {
	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "big.bin", Size: 8 << 20}})
	// A slow seeder keeps everyone connected to it for the whole test.
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 1 << 20})
	var others []netip.AddrPort
	for i := 0; i < 2; i++ {
		c, _, _ := leecher(t, f, Config{ListenAddr: fmt.Sprintf("127.0.0.%d:0", 40+i)}, sc.Addr())
		others = append(others, c.Addr())
	}
	time.Sleep(500 * time.Millisecond) // let them connect to the seeder
	_, tor, _ := leecher(t, f, Config{ListenAddr: "127.0.0.45:0"}, sc.Addr())
	deadline := time.Now().Add(20 * time.Second)
	for {
		known := knownPeers(t, tor)
		missing := 0
		for _, o := range others {
			if !slices.Contains(known, o) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s the leecher knows %v, not all of %v", known, others)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNoPEXForPrivate: a private torrent neither sends nor uses ut_pex.
func TestNoPEXForPrivate(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{{Path: "big.bin", Size: 8 << 20}})
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 64 << 10, NoDate: true, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{dir: dir, root: root, mi: mi}
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 1 << 20})
	c, _, _ := leecher(t, f, Config{ListenAddr: "127.0.0.40:0"}, sc.Addr())
	time.Sleep(500 * time.Millisecond)
	_, tor, _ := leecher(t, f, Config{ListenAddr: "127.0.0.45:0"}, sc.Addr())
	time.Sleep(3 * time.Second)
	if slices.Contains(knownPeers(t, tor), c.Addr()) {
		t.Fatal("a private torrent learned a peer by PEX")
	}
}

// TestLSD: two clients find each other by local service discovery (on a
// unicast loopback address, as multicast may not work here).
func TestLSD(t *testing.T) {
	pa, pb := freeUDPPort(t), freeUDPPort(t)
	lo := netip.MustParseAddr("127.0.0.1")
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	seedCfg := Config{LSD: true, LSDListen: netip.AddrPortFrom(lo, pa), LSDGroup: netip.AddrPortFrom(lo, pb)}
	sc, _ := seeder(t, f, seedCfg)
	if sc.lsd == nil {
		t.Fatal("LSD did not start")
	}
	leechCfg := Config{LSD: true, LSDListen: netip.AddrPortFrom(lo, pb), LSDGroup: netip.AddrPortFrom(lo, pa)}
	_, tor, dir := magnetLeecher(t, (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String(), leechCfg)
	waitInfo(t, tor, 30*time.Second)
	waitComplete(t, tor, 30*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestLSDConfig: a client listening on one address announces from it and
// in its family only; one listening on every address, in both families
// from wherever the route says; a group set by hand is kept.
func TestLSDConfig(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.168.1.5"), netip.MustParseAddr("fd00::5")
	hand := netip.MustParseAddrPort("127.0.0.1:7000")
	for _, c := range []struct {
		listen     netip.Addr
		group      netip.AddrPort
		wantGroup  netip.AddrPort
		src4, src6 netip.Addr
	}{
		{netip.IPv4Unspecified(), netip.AddrPort{}, netip.AddrPort{}, netip.Addr{}, netip.Addr{}},
		{netip.IPv6Unspecified(), netip.AddrPort{}, netip.AddrPort{}, netip.Addr{}, netip.Addr{}},
		{v4, netip.AddrPort{}, lsd.DefaultGroup, v4, netip.Addr{}},
		{netip.AddrFrom16(v4.As16()), netip.AddrPort{}, lsd.DefaultGroup, v4, netip.Addr{}}, // v4-mapped
		{v6, netip.AddrPort{}, lsd.DefaultGroup6, netip.Addr{}, v6},
		{v4, hand, hand, v4, netip.Addr{}},
	} {
		got := lsdConfig(c.listen, c.group)
		if got.Group != c.wantGroup || got.Group6.IsValid() || got.Source != c.src4 || got.Source6 != c.src6 {
			t.Errorf("lsdConfig(%v, %v) = group %v/%v, source %v/%v; want %v/none, %v/%v",
				c.listen, c.group, got.Group, got.Group6, got.Source, got.Source6, c.wantGroup, c.src4, c.src6)
		}
	}
}

// TestMagnetFromCache: a magnet whose pieces are already in storage
// (added before, with the same provider) is complete once its metadata
// arrives, and tells its peers with Have messages.
func TestMagnetFromCache(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a", Size: 300 << 10}})
	sc, _ := seeder(t, f, Config{})
	// The leecher's storage is the seeder's folder: everything is there.
	c := newClient(t, Config{Storage: storage.File{Dir: f.dir}})
	tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, TorrentOptions{Peers: []netip.AddrPort{sc.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	waitInfo(t, tor, 30*time.Second)
	waitComplete(t, tor, 10*time.Second)
}

// TestPortMessage: two clients with DHT nodes that meet as peers learn each
// other's node from the PORT message, without any bootstrap.
func TestPortMessage(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a", Size: 1 << 20}})
	cfg := Config{ListenAddr: "127.0.0.2:0", DHT: true, DHTBootstrap: []string{}}
	sc, _ := seeder(t, f, cfg)
	cfg.ListenAddr = "127.0.0.3:0"
	lc, tor, _ := leecher(t, f, cfg, sc.Addr())
	waitComplete(t, tor, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for sc.DHT().Stats().Nodes == 0 || lc.DHT().Stats().Nodes == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("DHT nodes after PORT: seeder %d, leecher %d", sc.DHT().Stats().Nodes, lc.DHT().Stats().Nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
