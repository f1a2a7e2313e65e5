package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestInteropPEX: peer exchange (ut_pex, BEP 11) with the independent
// clients, both ways.
//
//   - "tells swarmfs": transmission, aria2 or rtorrent in the middle,
//     seeding, with a libtorrent leecher, slowed so that it stays,
//     connected to it; swarmfs, knowing only the middle peer, learns the
//     leecher's address from its ut_pex.
//   - "learns from swarmfs": a swarmfs seeder in the middle dials a
//     swarmfs leecher and then aria2, rtorrent or WebTorrent (transmission
//     never dials a loopback peer, so it has no case here), whose only way
//     to the leecher is our ut_pex: it must dial it (learnsFromSwarmfs).
//     WebTorrent names no peers in its ut_pex, so it has only this case.
func TestInteropPEX(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "transmission-daemon", "aria2c", "rtorrent", "webtorrent")
	// Mostly waiting on the other clients' timers (transmission's 10 s
	// rechoke, rtorrent's ut_pex): the interop tests that do run side by
	// side, after the package's other tests.
	t.Parallel()
	f := newCryptoFixture(t, 8<<20)
	for i, client := range []string{"transmission", "aria2", "rtorrent", "webtorrent"} {
		ip := func(n int) string { return fmt.Sprintf("127.0.6.%d", 10*i+n) }
		// WebTorrent's ut_pex names no peers: it has no "tells" case.
		if client != "webtorrent" {
			t.Run(client+" tells swarmfs", func(t *testing.T) {
				// Each client sends its ut_pex on its own clock (rtorrent's
				// first came after 90 s): the three wait side by side.
				t.Parallel()
				var mid string
				switch client {
				case "transmission":
					tr := swarmtest.StartTransmission(t, swarmtest.TROptions{IP: ip(1), PEX: true})
					tr.WaitSeeding(t, tr.AddTorrent(t, f.torrent, f.dir), 30*time.Second)
					mid = tr.Addr()
				case "aria2":
					a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(1), PEX: true}, f.torrent, f.dir, true)
					a.WaitSeeding(t, 30*time.Second)
					mid = a.Addr()
				case "rtorrent":
					r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip(1), PEX: true}, f.torrent, f.dir)
					r.WaitSeeding(t, 30*time.Second)
					mid = r.Addr()
				}
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip(2), NoTrackers: true, DownloadRate: 16 << 10})
				lt.AddTorrent(f.torrent, t.TempDir(), false)
				lt.ConnectPeer(f.mi.InfoHash, mid)
				c := newClient(t, Config{ListenAddr: ip(3) + ":0", NoTrackers: true})
				tor, err := c.AddTorrent(f.mi, TorrentOptions{Storage: storage.File{Dir: t.TempDir()}, Peers: []netip.AddrPort{netip.MustParseAddrPort(mid)}})
				if err != nil {
					t.Fatal(err)
				}
				waitToldOf(t, tor, netip.MustParseAddrPort(lt.Addr()).Addr(), client)
			})
		}
		if client == "transmission" {
			continue
		}
		t.Run(client+" learns from swarmfs", func(t *testing.T) {
			var addr string
			switch client {
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(6), PEX: true}, f.torrent, t.TempDir(), false)
				a.WaitListening(t, 30*time.Second)
				addr = a.Addr()
			case "rtorrent":
				r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip(6), PEX: true}, f.torrent, t.TempDir())
				addr = r.Addr()
			case "webtorrent":
				w := swarmtest.StartWebTorrent(t, swarmtest.WebTorrentOptions{IP: ip(6)}, f.torrent, t.TempDir())
				addr = w.Addr()
			}
			took := learnsFromSwarmfs(t, f, ip(4)+":0", ip(5)+":0", addr)
			t.Logf("%s dialled the leecher %v after swarmfs's ut_pex could name it", client, took.Round(time.Millisecond))
		})
	}
}

// learnsFromSwarmfs checks that the client at addr, with PEX on, dials a
// peer it can learn of only from our ut_pex, and returns how long that
// took. A swarmfs seeder listening on mid, slowed so that the client
// stays a while, dials a swarmfs leecher listening on leech (slowed, and
// with PEX off, so that it tells no one and dials no one) and then the
// client; the client must dial the leecher.
func learnsFromSwarmfs(t *testing.T, f cryptoFixture, mid, leech, addr string) time.Duration {
	t.Helper()
	c := newClient(t, Config{ListenAddr: mid, NoTrackers: true, UploadRate: 24 << 10})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 10*time.Second) // a seed: checked at once
	lc := newClient(t, Config{ListenAddr: leech, NoTrackers: true, NoPEX: true, DownloadRate: 8 << 10})
	ltor, err := lc.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	// The leecher first, so that our first ut_pex to the client names it.
	tor.AddPeers([]netip.AddrPort{lc.Addr()})
	deadline := time.Now().Add(30 * time.Second)
	for tor.Stats().Peers == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the swarmfs seeder has not connected to the leecher after 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := netip.MustParseAddrPort(addr)
	tor.AddPeers([]netip.AddrPort{client})
	return waitDialledFrom(t, ltor, client.Addr(), 150*time.Second)
}

// waitToldOf waits until tor knows a peer on ip (on any port: only the
// middle peer's ut_pex could name it, and transmission names the port a
// peer connected from, not its listen port) and logs who told it when.
func waitToldOf(t *testing.T, tor *Torrent, ip netip.Addr, client string) {
	t.Helper()
	start := time.Now()
	for {
		known := knownPeers(t, tor)
		if i := slices.IndexFunc(known, func(a netip.AddrPort) bool { return a.Addr() == ip }); i >= 0 {
			t.Logf("%s told swarmfs of the leecher on %v (as %v) after %v", client, ip, known[i], time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 150*time.Second {
			t.Fatalf("after %v swarmfs knows %v, not the leecher on %v", time.Since(start).Round(time.Second), known, ip)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
