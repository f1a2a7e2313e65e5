package engine

import (
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// v6Fixture is a torrent made by libtorrent that announces to a
// GoTracker over IPv6, and a libtorrent seeder of it that listens on
// [::1] only.
type v6Fixture struct {
	fixture
	path    string // the .torrent
	tracker *swarmtest.GoTracker
	lt      *swarmtest.LT
}

func newV6Fixture(t *testing.T, opts swarmtest.LTOptions) v6Fixture {
	t.Helper()
	swarmtest.RequireTools(t, "libtorrent")
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, swarmtest.StandardFiles())
	tr := swarmtest.StartGoTracker(t)
	var tiers [][]string
	if !opts.NoTrackers {
		tiers = [][]string{{tr.HTTP6}}
	}
	path, _ := swarmtest.MakeTorrent(t, root, tiers, 32<<10)
	mi, err := metainfo.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if opts.IP == "" {
		opts.IP = "::1"
	}
	lt := swarmtest.StartLibtorrent(t, opts)
	lt.AddTorrent(path, dir, true)
	lt.WaitSeeding(t, mi.InfoHash, 30*time.Second)
	return v6Fixture{fixture: fixture{dir: dir, root: root, mi: mi}, path: path, tracker: tr, lt: lt}
}

// waitTracked waits until the tracker hands out addr for ih.
func waitTracked(t *testing.T, tr *swarmtest.GoTracker, ih [20]byte, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(tr.Peers(ih), addr) {
		if time.Now().After(deadline) {
			t.Fatalf("tracker has %v for the torrent, not %s", tr.Peers(ih), addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIPv6TrackerPeers6: a libtorrent seeder listening on [::1] only is
// handed out by the tracker in "peers6"; swarmfs, listening on 127.0.0.1
// and announcing over IPv4, dials it over IPv6 and downloads byte-exact.
func TestIPv6TrackerPeers6(t *testing.T) {
	f := newV6Fixture(t, swarmtest.LTOptions{})
	waitTracked(t, f.tracker, f.mi.InfoHash, f.lt.Addr())

	c := newClient(t, Config{})
	dir := t.TempDir()
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: dir}, Trackers: [][]string{{f.tracker.HTTP4}}})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestIPv6AnnounceFromV6Listener: a client listening on [::1] only
// announces to a tracker reached over IPv4 (from any address: a socket
// bound to [::1] cannot reach 127.0.0.1) and tells it its IPv6 address
// with BEP 7's "ipv6=", so the tracker hands that out.
func TestIPv6AnnounceFromV6Listener(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	tr := swarmtest.StartGoTracker(t)
	c := newClient(t, Config{ListenAddr: "[::1]:0"})
	if _, err := c.AddTorrent(f.mi, TorrentOptions{Storage: storage.File{Dir: t.TempDir()}, Trackers: [][]string{{tr.HTTP4}}}); err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(netip.IPv6Loopback(), c.Port()).String()
	waitTracked(t, tr, f.mi.InfoHash, want)
	q := tr.Queries(f.mi.InfoHash)
	if len(q) == 0 || !slices.ContainsFunc(q, func(s string) bool { return containsParam(s, "ipv6", "%3A%3A1") }) {
		t.Errorf("announces %q carry no ipv6=::1", q)
	}
	if c.Addr().String() != "[::1]:"+strconv.Itoa(int(c.Port())) {
		t.Errorf("Addr() = %v, want [::1]:%d", c.Addr(), c.Port())
	}
}

// containsParam tells whether the raw query q has key=value (value as
// percent-encoded in q).
func containsParam(q, key, value string) bool {
	v, err := url.ParseQuery(q)
	if err != nil {
		return false
	}
	want, _ := url.QueryUnescape(value)
	return slices.Contains(v[key], want)
}

// TestIPv6PEX: a dual-stack libtorrent peer (127.0.0.2 and [::1]) that
// has almost nothing tells swarmfs, connected to it over IPv4, about the
// seeder it knows on [::1] only (ut_pex "added6"); swarmfs dials the
// seeder over IPv6 and downloads byte-exact.
func TestIPv6PEX(t *testing.T) {
	f := newV6Fixture(t, swarmtest.LTOptions{NoTrackers: true})
	// The middle peer downloads at 4 KB/s: swarmfs must get the data
	// from the seeder it learns of.
	mid := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", AlsoIP: "::1", NoTrackers: true, DownloadRate: 4 << 10})
	mid.AddTorrent(f.path, t.TempDir(), false)
	mid.ConnectPeer(f.mi.InfoHash, f.lt.Addr())
	// libtorrent's first PEX message to a new peer names the peers it has
	// then, the next comes a minute later: swarmfs comes once the middle
	// peer has the seeder (before, two runs in four took 64 s, the
	// other two 4 s).
	deadline := time.Now().Add(30 * time.Second)
	for mid.Status(f.mi.InfoHash).NumSeeds == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the middle peer did not connect to the seeder within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	midAddr := netip.MustParseAddrPort(mid.Addr())
	c := newClient(t, Config{})
	dir := t.TempDir()
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: dir}, Peers: []netip.AddrPort{midAddr}})
	if err != nil {
		t.Fatal(err)
	}
	seed := netip.MustParseAddrPort(f.lt.Addr())
	deadline = time.Now().Add(90 * time.Second)
	for !slices.Contains(knownPeers(t, tor), seed) {
		if time.Now().After(deadline) {
			t.Fatalf("swarmfs knows %v, not the seeder %v", knownPeers(t, tor), seed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestExtHandshakeIPv6: our extension handshake tells a peer our IPv6
// address ("ipv6", 16 bytes) and the address we see it at ("yourip").
func TestExtHandshakeIPv6(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	got := make(chan *peer.ExtendedHandshake, 1)
	fp := listenFake(t, "127.0.0.5", func(nc net.Conn) {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := peer.ReadHandshake(nc); err != nil {
			return
		}
		var rsv peer.Reserved
		rsv.SetExtended()
		if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: f.mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
			return
		}
		dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
		var m peer.Message
		for dec.Decode(&m) == nil {
			if m.Type == peer.Extended && m.ExtendedID == peer.ExtHandshakeID {
				h, err := peer.ParseExtendedHandshake(m.Payload)
				if err == nil {
					got <- h
				}
				return
			}
		}
	})
	c := newClient(t, Config{ListenAddr: "[::1]:0", Encryption: mse.Off})
	if _, err := c.AddTorrent(f.mi, TorrentOptions{Storage: storage.File{Dir: t.TempDir()}, Peers: []netip.AddrPort{fp.addr()}}); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-got:
		if a, _ := netip.AddrFromSlice([]byte(h.IPv6)); a != netip.IPv6Loopback() {
			t.Errorf("ipv6 = %x, want ::1", h.IPv6)
		}
		if a, _ := h.YourIPAddr(); a != fp.addr().Addr() {
			t.Errorf("yourip = %v, want %v", a, fp.addr().Addr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no extension handshake")
	}
}

// TestIPv6DHT: a client listening dual-stack (the default: every
// address, TCP and one UDP socket for uTP and the DHT) runs its DHT node
// in both families (BEP 32) and finds, by magnet alone, a libtorrent
// seeder announced among IPv4 DHT nodes and another, listening on [::1]
// only, announced among IPv6 ones.
func TestIPv6DHT(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	boot4 := newClient(t, Config{ListenAddr: "127.0.0.20:0", DHT: true, DHTBootstrap: []string{}}).DHT().Addr().String()
	boot6 := newClient(t, Config{ListenAddr: "[::1]:0", DHT: true, DHTBootstrap: []string{}}).DHT().Addr().String()

	f4, path4 := trackerless(t, swarmtest.StandardFiles(), 32<<10)
	lt4 := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", DHT: true, DHTBootstrap: []string{boot4}, NoTrackers: true})
	lt4.AddTorrent(path4, f4.dir, true)
	f6, path6 := trackerless(t, []swarmtest.FileSpec{{Path: "six.bin", Size: 300 << 10}}, 32<<10)
	lt6 := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "::1", DHT: true, DHTBootstrap: []string{boot6}, NoTrackers: true})
	lt6.AddTorrent(path6, f6.dir, true)
	for _, s := range []struct {
		lt *swarmtest.LT
		f  fixture
	}{{lt4, f4}, {lt6, f6}} {
		s.lt.WaitSeeding(t, s.f.mi.InfoHash, 30*time.Second)
		s.lt.WaitDHTNodes(t, 1, 30*time.Second)
		s.lt.DHTAnnounce(s.f.mi.InfoHash, 0)
	}

	c := newClient(t, Config{ListenAddr: ":0", DHT: true, DHTBootstrap: []string{boot4, boot6}})
	for _, f := range []fixture{f4, f6} {
		dir := t.TempDir()
		tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: dir}})
		if err != nil {
			t.Fatal(err)
		}
		waitInfo(t, tor, 60*time.Second)
		waitComplete(t, tor, 60*time.Second)
		swarmtest.VerifyTree(t, f.root, filepath.Join(dir, filepath.Base(f.root)))
	}
	if st := c.DHT().Stats(); st.Nodes6 == 0 || st.Nodes == st.Nodes6 {
		t.Errorf("DHT table: %d nodes, %d IPv6: want both families", st.Nodes, st.Nodes6)
	}
}

// TestIPv6PeerDirect: two clients on [::1] only, one dialling the other
// (--peer [::1]:P): connections both ways over IPv6, and addresses shown
// as [v6]:port.
func TestIPv6PeerDirect(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	sc, _ := seeder(t, f, Config{ListenAddr: "[::1]:0"})
	if got, want := sc.Addr().String(), "[::1]:"+strconv.Itoa(int(sc.Port())); got != want {
		t.Errorf("Addr() = %s, want %s", got, want)
	}
	_, tor, dir := leecher(t, f, Config{ListenAddr: "[::1]:0"}, sc.Addr())
	waitComplete(t, tor, 30*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}
