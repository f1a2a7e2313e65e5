package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestInteropMagnet: magnet links against the independent clients, both
// ways (libtorrent's side is TestMagnetFromLibtorrent and the v2 magnet
// tests). swarmfs, given only a magnet and a transmission, aria2 or
// rtorrent seeder's address, fetches the info dictionary from it (BEP 9
// over BEP 10) and then the files; and each of them, given only the
// magnet, fetches the info dictionary from a swarmfs seeder and then the
// files. The seeder dials the leecher: transmission never dials a loopback
// peer, and neither aria2 nor rtorrent can be told of one. WebTorrent is
// run the same way, though it could dial.
func TestInteropMagnet(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "transmission-daemon", "aria2c", "rtorrent", "webtorrent")
	// Mostly waiting on the other clients' timers (transmission's 10 s
	// rechoke, rtorrent's ut_pex): the interop tests that do run side by
	// side, after the package's other tests.
	t.Parallel()
	f := newCryptoFixture(t, 3<<20)
	magnet, m := f.magnet(t)
	for i, client := range []string{"transmission", "aria2", "rtorrent", "webtorrent"} {
		ip := func(n int) string { return fmt.Sprintf("127.0.5.%d", 10*i+n) }
		t.Run(client+" serves the metadata", func(t *testing.T) {
			var addr string
			switch client {
			case "transmission":
				tr := swarmtest.StartTransmission(t, swarmtest.TROptions{IP: ip(1)})
				tr.WaitSeeding(t, tr.AddTorrent(t, f.torrent, f.dir), 30*time.Second)
				addr = tr.Addr()
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(1)}, f.torrent, f.dir, true)
				a.WaitSeeding(t, 30*time.Second)
				addr = a.Addr()
			case "rtorrent":
				r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip(1)}, f.torrent, f.dir)
				r.WaitSeeding(t, 30*time.Second)
				addr = r.Addr()
			case "webtorrent":
				w := swarmtest.StartWebTorrent(t, swarmtest.WebTorrentOptions{IP: ip(1)}, f.torrent, f.dir)
				w.WaitDone(t, 30*time.Second)
				addr = w.Addr()
			}
			dir := t.TempDir()
			c := newClient(t, Config{ListenAddr: ip(2) + ":0", Storage: storage.File{Dir: dir}, NoTrackers: true})
			tor, err := c.AddMagnet(m, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{netip.MustParseAddrPort(addr)}})
			if err != nil {
				t.Fatal(err)
			}
			// transmission unchokes at its 10 s rechoke; the metadata
			// comes before that.
			waitInfo(t, tor, 30*time.Second)
			checkInfo(t, tor, f.mi)
			waitComplete(t, tor, 60*time.Second)
			f.checkTree(t, dir)
		})
		t.Run(client+" fetches the metadata", func(t *testing.T) {
			dir := t.TempDir()
			var addr string
			var done func() bool
			switch client {
			case "transmission":
				tr := swarmtest.StartTransmission(t, swarmtest.TROptions{IP: ip(3)})
				id := tr.AddTorrent(t, magnet, dir)
				tr.WaitAccepting(t, id, 30*time.Second)
				addr = tr.Addr()
				done = func() bool {
					st := tr.Status(t, id)
					return st.PercentDone >= 1 && st.LeftUntilDone == 0
				}
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(3)}, magnet, dir, false)
				a.WaitListening(t, 30*time.Second)
				addr = a.Addr()
				done = func() bool {
					st := a.Status(t)
					return st.TotalLength > 0 && st.CompletedLength == st.TotalLength && (st.Status == "complete" || st.Seeder)
				}
			case "rtorrent":
				r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip(3)}, magnet, dir)
				addr = r.Addr()
				done = func() bool {
					st := r.Status(t)
					return st.Complete && !st.Hashing && st.SizeBytes == f.mi.Info.TotalLength
				}
			case "webtorrent":
				w := swarmtest.StartWebTorrent(t, swarmtest.WebTorrentOptions{IP: ip(3)}, magnet, dir)
				addr = w.Addr()
				done = func() bool { return w.Status(t).Done }
			}
			c := newClient(t, Config{ListenAddr: ip(4) + ":0", Storage: storage.File{Dir: f.dir}, NoTrackers: true})
			tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{netip.MustParseAddrPort(addr)}})
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, client, 60*time.Second, tor, done)
			if makesNoEmptyFile(client) {
				f.checkTreeWithoutEmpty(t, dir, client)
			} else {
				f.checkTree(t, dir)
			}
		})
	}
}
