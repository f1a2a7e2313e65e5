package engine

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/lsd"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestInteropLSD: local service discovery (BEP 14, the IPv4 group
// 239.192.152.143:6771) with libtorrent, transmission and aria2, both
// ways, in a network namespace where loopback carries multicast. Every
// peer listens on 127.0.0.1 (an announce names only a port: the sender
// is where the datagram came from).
//
//   - "swarmfs hears": the other client seeds and announces; swarmfs,
//     given a magnet and nothing else, is heard by no one (it announces to
//     another port) and must dial the seeder it heard of.
//   - "hears swarmfs": swarmfs seeds and announces but hears no one (it
//     listens on another port); the other client, given the torrent and
//     nothing else, must dial swarmfs. transmission never dials a
//     loopback peer: its case is in TestInteropTransmission.
func TestInteropLSD(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "transmission-daemon", "aria2c")
	if !runInNetns(t) {
		return
	}
	f := newCryptoFixture(t, 3<<20)
	_, m := f.magnet(t)
	group := lsd.DefaultGroup
	elsewhere := netip.AddrPortFrom(group.Addr(), group.Port()+1)
	for _, client := range []string{"libtorrent", "transmission", "aria2"} {
		t.Run("swarmfs hears "+client, func(t *testing.T) {
			// swarmfs first: the others announce a torrent when they
			// start it, and then only every few minutes.
			dir := t.TempDir()
			c := newClient(t, Config{NoTrackers: true, LSD: true, LSDGroup: elsewhere, LSDListen: netip.AddrPortFrom(netip.IPv4Unspecified(), group.Port())})
			tor, err := c.AddMagnet(m, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: dir}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var addr string
			switch client {
			case "libtorrent":
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{NoTrackers: true, LSD: true})
				lt.AddTorrent(f.torrent, f.dir, true)
				addr = lt.Addr()
			case "transmission":
				tr := swarmtest.StartTransmission(t, swarmtest.TROptions{LPD: true})
				tr.AddTorrent(t, f.torrent, f.dir)
				addr = tr.Addr()
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{LPD: true}, f.torrent, f.dir, true)
				addr = a.Addr()
			}
			waitInfo(t, tor, 90*time.Second)
			waitComplete(t, tor, 60*time.Second)
			f.checkTree(t, dir)
			if !slices.Contains(knownPeers(t, tor), netip.MustParseAddrPort(addr)) {
				t.Errorf("swarmfs does not list %s's address %s: %v", client, addr, knownPeers(t, tor))
			}
			t.Logf("swarmfs heard %s and downloaded from it in %v", client, time.Since(start).Round(time.Millisecond))
		})
		if client == "transmission" {
			continue
		}
		t.Run(client+" hears swarmfs", func(t *testing.T) {
			// The other client first: swarmfs announces a torrent when it
			// adds it, and then only every few minutes.
			dir := t.TempDir()
			var done func() bool
			switch client {
			case "libtorrent":
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{NoTrackers: true, LSD: true})
				lt.AddTorrent(f.torrent, dir, false)
				done = func() bool { return lt.Status(f.mi.InfoHash).IsFinished }
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{LPD: true}, f.torrent, dir, false)
				a.WaitListening(t, 30*time.Second)
				done = func() bool { return a.Status(t).Complete() }
			}
			c := newClient(t, Config{NoTrackers: true, LSD: true, LSDGroup: group, LSDListen: netip.AddrPortFrom(netip.IPv4Unspecified(), group.Port()+2)})
			tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			waitDone(t, client, 90*time.Second, tor, done)
			f.checkTree(t, dir)
			t.Logf("%s heard swarmfs and downloaded from it in %v", client, time.Since(start).Round(time.Millisecond))
		})
	}
}
