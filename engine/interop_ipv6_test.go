package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestInteropIPv6: IPv6 with an independent client, aria2, both ways:
// BEP 7's peers6 and "ipv6=", ut_pex's added6 (BEP 11) and the IPv6 DHT
// (BEP 32), each ending in the peer wire over IPv6. libtorrent's side is
// in ipv6_test.go.
//
// ::1 is one address, and aria2 does not name a peer to another on the
// same address (nor do we, in ut_pex): the test runs in a network
// namespace of its own whose loopback has fd5f::1 to fd5f::20 as well,
// and each peer gets one of them, IPv6 only.
//
//   - tracker: aria2 seeding announces itself over IPv6; swarmfs,
//     announcing over IPv4, gets it in peers6 and dials it. swarmfs
//     seeding, listening on IPv6 only, announces over IPv4 with "ipv6=";
//     aria2 gets it in peers6 and dials it.
//   - PEX: aria2 seeding tells swarmfs of a leecher in added6; swarmfs
//     seeding tells aria2 of one, which aria2 then dials.
//   - DHT: aria2 seeding announces itself on the IPv6 DHT (aria2's IPv4
//     DHT off), whose entry point is a swarmfs node; swarmfs, given only
//     the magnet, finds it; and the other way round.
func TestInteropIPv6(t *testing.T) {
	swarmtest.RequireTools(t, "aria2c")
	if !runInNetns(t, nsAddrs(20, false)...) {
		return
	}
	ip, listen := nsIP6, nsListen6
	f := newCryptoFixture(t, 3<<20)
	magnet, m := f.magnet(t)
	// aria2 downloading: done when every byte is there and checked.
	aria2Done := func(t *testing.T, a *swarmtest.Aria2) func() bool {
		return func() bool {
			st := a.Status(t)
			return st.TotalLength == f.mi.Info.TotalLength && st.CompletedLength == st.TotalLength && (st.Status == "complete" || st.Seeder)
		}
	}

	t.Run("tracker: swarmfs finds aria2", func(t *testing.T) {
		t.Parallel()
		tr := swarmtest.StartGoTracker(t)
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(1), Trackers: []string{tr.HTTP6}}, f.torrent, f.dir, true)
		a.WaitSeeding(t, 30*time.Second)
		waitTracked(t, tr, f.mi.InfoHash, a.Addr())
		c := newClient(t, Config{ListenAddr: "127.0.0.1:0"})
		dir := t.TempDir()
		tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: dir}, Trackers: [][]string{{tr.HTTP4}}})
		if err != nil {
			t.Fatal(err)
		}
		waitComplete(t, tor, 60*time.Second)
		f.checkTree(t, dir)
	})
	t.Run("tracker: aria2 finds swarmfs", func(t *testing.T) {
		t.Parallel()
		tr := swarmtest.StartGoTracker(t)
		c := newClient(t, Config{ListenAddr: listen(2)})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}, Trackers: [][]string{{tr.HTTP4}}})
		if err != nil {
			t.Fatal(err)
		}
		waitComplete(t, tor, 10*time.Second) // a seed: checked at once
		waitTracked(t, tr, f.mi.InfoHash, c.Addr().String())
		dir := t.TempDir()
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(3), Trackers: []string{tr.HTTP6}}, f.torrent, dir, false)
		waitDone(t, "aria2", 60*time.Second, tor, aria2Done(t, a))
		f.checkTree(t, dir)
	})

	t.Run("PEX: aria2 tells swarmfs", func(t *testing.T) {
		t.Parallel()
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(4), PEX: true}, f.torrent, f.dir, true)
		a.WaitSeeding(t, 30*time.Second)
		aria2 := []netip.AddrPort{netip.MustParseAddrPort(a.Addr())}
		// The leecher aria2 is to name is a slowed swarmfs client: aria2
		// names only peers whose listen port it knows, and libtorrent
		// listening on an IPv6 address of this namespace sends none in
		// its extension handshake (its "p" is the port of an external
		// address it has not learned).
		lc := newClient(t, Config{ListenAddr: listen(5), NoTrackers: true, DownloadRate: 16 << 10})
		ltor, err := lc.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: t.TempDir()}, Peers: aria2})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for ltor.Stats().Peers == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the leecher has not connected to aria2 after 30 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		c := newClient(t, Config{ListenAddr: listen(6), NoTrackers: true})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{Storage: storage.File{Dir: t.TempDir()}, Peers: aria2})
		if err != nil {
			t.Fatal(err)
		}
		waitToldOf(t, tor, netip.MustParseAddr(ip(5)), "aria2")
	})
	t.Run("PEX: aria2 learns from swarmfs", func(t *testing.T) {
		t.Parallel()
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(9), PEX: true}, f.torrent, t.TempDir(), false)
		a.WaitListening(t, 30*time.Second)
		took := learnsFromSwarmfs(t, f, listen(7), listen(8), a.Addr())
		t.Logf("aria2 dialled the leecher %v after swarmfs's added6 could name it", took.Round(time.Millisecond))
	})

	t.Run("DHT: swarmfs finds aria2", func(t *testing.T) {
		t.Parallel()
		boot := newClient(t, Config{ListenAddr: listen(10), DHT: true, DHTBootstrap: []string{}}).DHT().Addr().String()
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(11), DHTEntry: boot}, f.torrent, f.dir, true)
		a.WaitSeeding(t, 30*time.Second)
		start := time.Now()
		c := newClient(t, Config{ListenAddr: listen(12), DHT: true, DHTBootstrap: []string{boot}})
		f.fetchMagnet(t, c, m, 120*time.Second)
		if st := c.DHT().Stats(); st.Nodes6 == 0 || st.Nodes != st.Nodes6 {
			t.Errorf("DHT table: %d nodes, %d IPv6: want IPv6 only", st.Nodes, st.Nodes6)
		}
		t.Logf("swarmfs found aria2 on the IPv6 DHT and downloaded from it in %v", time.Since(start).Round(time.Millisecond))
	})
	t.Run("DHT: aria2 finds swarmfs", func(t *testing.T) {
		t.Parallel()
		boot := newClient(t, Config{ListenAddr: listen(13), DHT: true, DHTBootstrap: []string{}}).DHT().Addr().String()
		c := newClient(t, Config{ListenAddr: listen(14), DHT: true, DHTBootstrap: []string{boot}})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}})
		if err != nil {
			t.Fatal(err)
		}
		waitComplete(t, tor, 10*time.Second)
		dir := t.TempDir()
		start := time.Now()
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(15), DHTEntry: boot}, magnet, dir, false)
		waitDone(t, "aria2", 120*time.Second, tor, aria2Done(t, a))
		f.checkTree(t, dir)
		t.Logf("aria2 found swarmfs on the IPv6 DHT and downloaded from it in %v", time.Since(start).Round(time.Millisecond))
	})
}
