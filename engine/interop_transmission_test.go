package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/lsd"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestInteropTransmission: what transmission does only with peers off
// loopback, which it takes for martians (it never dials a peer, nor keeps
// a DHT node, on 127.0.0.0/8 or ::1). The test runs in a network
// namespace of its own whose loopback has 10.59.0.1 to 10.59.0.40 and
// fd5f::1 to fd5f::40 as well, one of each per peer:
//
//   - PEX, over IPv4 and over IPv6 (added6): transmission leeching dials a
//     leecher it can learn of only from our ut_pex (learnsFromSwarmfs);
//     over IPv6, transmission seeding tells swarmfs of a leecher.
//   - tracker: transmission leeching gets a swarmfs seed, listening on
//     IPv6 only and announcing over IPv4 with "ipv6=" (BEP 7), in peers6
//     and downloads from it over IPv6.
//   - LSD (BEP 14): transmission hears a swarmfs seed listening on
//     10.59.0.30, whose announces leave from that address, and downloads
//     from it.
//   - DHT (BEP 5): swarmfs, given only the magnet, finds transmission
//     seeding; transmission, given only the magnet, finds swarmfs. Both
//     on a DHT of ten swarmfs nodes (transmission announces and searches
//     only once its table has at least nine nodes).
func TestInteropTransmission(t *testing.T) {
	swarmtest.RequireTools(t, "transmission-daemon")
	setup := nsAddrs(40, true)
	// Multicast (LSD) that leaves from no address of its own (as
	// transmission's does) comes from 10.59.0.40, where nobody listens,
	// not from 127.0.0.1; swarmfs's comes from its listen address.
	setup = append(setup, []string{"route", "replace", "239.0.0.0/8", "dev", "lo", "src", "10.59.0.40"})
	if !runInNetns(t, setup...) {
		return
	}
	ip4, ip6, listen4, listen6 := nsIP4, nsIP6, nsListen4, nsListen6
	f := newCryptoFixture(t, 3<<20)
	magnet, m := f.magnet(t)
	start := func(t *testing.T, n int, opts swarmtest.TROptions) *swarmtest.Transmission {
		opts.IP, opts.IP6 = ip4(n), ip6(n)
		return swarmtest.StartTransmission(t, opts)
	}
	// transmission downloading: done when every byte is there and checked.
	done := func(t *testing.T, tr *swarmtest.Transmission, id int) func() bool {
		return func() bool {
			st := tr.Status(t, id)
			return st.SizeWhenDone == f.mi.Info.TotalLength && st.LeftUntilDone == 0 && st.Status >= 5
		}
	}

	for _, v6 := range []bool{false, true} {
		name, mid, leech, via := "PEX", listen4(1), listen4(2), "ut_pex"
		n := 3
		if v6 {
			name, mid, leech, via, n = "PEX over IPv6", listen6(4), listen6(5), "added6", 6
		}
		t.Run(name+": transmission learns from swarmfs", func(t *testing.T) {
			t.Parallel()
			tr := start(t, n, swarmtest.TROptions{PEX: true})
			tr.AddTorrent(t, f.torrent, t.TempDir())
			addr := tr.Addr()
			if v6 {
				addr = tr.Addr6()
			}
			took := learnsFromSwarmfs(t, f, mid, leech, addr)
			t.Logf("transmission dialled the leecher %v after swarmfs's %s could name it", took.Round(time.Millisecond), via)
		})
	}
	t.Run("PEX over IPv6: transmission tells swarmfs", func(t *testing.T) {
		t.Parallel()
		tr := start(t, 7, swarmtest.TROptions{PEX: true})
		tr.WaitSeeding(t, tr.AddTorrent(t, f.torrent, f.dir), 30*time.Second)
		mid := []netip.AddrPort{netip.MustParseAddrPort(tr.Addr6())}
		lc := newClient(t, Config{ListenAddr: listen6(8), NoTrackers: true, DownloadRate: 16 << 10})
		if _, err := lc.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: t.TempDir()}, Peers: mid}); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, Config{ListenAddr: listen6(9), NoTrackers: true})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{Storage: storage.File{Dir: t.TempDir()}, Peers: mid})
		if err != nil {
			t.Fatal(err)
		}
		waitToldOf(t, tor, netip.MustParseAddr(ip6(8)), "transmission")
	})

	t.Run("tracker: transmission finds swarmfs in peers6", func(t *testing.T) {
		t.Parallel()
		gt := swarmtest.StartGoTracker(t)
		c := newClient(t, Config{ListenAddr: listen6(10)})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}, Trackers: [][]string{{gt.HTTP4}}})
		if err != nil {
			t.Fatal(err)
		}
		waitComplete(t, tor, 10*time.Second) // a seed: checked at once
		waitTracked(t, gt, f.mi.InfoHash, c.Addr().String())
		tr := start(t, 11, swarmtest.TROptions{Trackers: []string{gt.HTTP4}})
		dir := t.TempDir()
		waitDone(t, "transmission", 60*time.Second, tor, done(t, tr, tr.AddTorrent(t, f.torrent, dir)))
		f.checkTreeWithoutEmpty(t, dir, "transmission")
	})

	t.Run("LSD: transmission hears swarmfs", func(t *testing.T) {
		t.Parallel()
		// transmission first: swarmfs announces a torrent when it adds
		// it, and then only every few minutes. swarmfs hears no one (it
		// listens on another port).
		tr := start(t, 31, swarmtest.TROptions{LPD: true})
		dir := t.TempDir()
		id := tr.AddTorrent(t, f.torrent, dir)
		// transmission 3.00 drops every announce it hears in its first 5 s
		// (its flood allowance is set at its first 5 s housekeeping).
		time.Sleep(6 * time.Second)
		group := lsd.DefaultGroup
		c := newClient(t, Config{ListenAddr: "10.59.0.30:0", NoTrackers: true, LSD: true, LSDGroup: group,
			LSDListen: netip.AddrPortFrom(netip.IPv4Unspecified(), group.Port()+2)})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}})
		if err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		waitDone(t, "transmission", 90*time.Second, tor, done(t, tr, id))
		f.checkTreeWithoutEmpty(t, dir, "transmission")
		t.Logf("transmission heard swarmfs and downloaded from it in %v", time.Since(begin).Round(time.Millisecond))
	})

	t.Run("DHT", func(t *testing.T) {
		t.Parallel()
		var nodes []string
		for n := 20; n < 30; n++ {
			boot := nodes
			if boot == nil {
				boot = []string{}
			}
			c := newClient(t, Config{ListenAddr: listen4(n), DHT: true, DHTBootstrap: boot})
			nodes = append(nodes, c.DHT().Addr().String())
		}
		t.Run("swarmfs finds transmission", func(t *testing.T) {
			t.Parallel()
			tr := start(t, 12, swarmtest.TROptions{DHTNodes: nodes})
			tr.WaitSeeding(t, tr.AddTorrent(t, f.torrent, f.dir), 30*time.Second)
			begin := time.Now()
			f.fetchMagnet(t, newClient(t, Config{ListenAddr: listen4(13), DHT: true, DHTBootstrap: nodes[:1]}), m, 150*time.Second)
			t.Logf("swarmfs found transmission on the DHT and downloaded from it in %v", time.Since(begin).Round(time.Millisecond))
		})
		t.Run("transmission finds swarmfs", func(t *testing.T) {
			t.Parallel()
			c := newClient(t, Config{ListenAddr: listen4(14), DHT: true, DHTBootstrap: nodes[:1]})
			tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}})
			if err != nil {
				t.Fatal(err)
			}
			waitComplete(t, tor, 10*time.Second)
			tr := start(t, 15, swarmtest.TROptions{DHTNodes: nodes})
			dir := t.TempDir()
			begin := time.Now()
			// It searches 0-20 s after the torrent is added, and again
			// every 5-10 s until its table is big enough: 51 and 74 s
			// from here to the last byte in two runs.
			waitDone(t, "transmission", 240*time.Second, tor, done(t, tr, tr.AddTorrent(t, magnet, dir)))
			f.checkTreeWithoutEmpty(t, dir, "transmission")
			t.Logf("transmission found swarmfs on the DHT and downloaded from it in %v", time.Since(begin).Round(time.Millisecond))
		})
	})
}
