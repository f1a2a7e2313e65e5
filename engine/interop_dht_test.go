package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestInteropDHT: the DHT (BEP 5) with the independent clients, both ways
// (libtorrent's side is TestMagnetViaDHT), on a loopback DHT whose entry
// point is a swarmfs node. With no tracker, no PEX and no LSD:
//
//   - "swarmfs finds": aria2 or rtorrent seeds and announces itself on the
//     DHT; swarmfs, given only a magnet, looks the torrent up, fetches the
//     info dictionary from the seeder and the files.
//   - "finds swarmfs": swarmfs seeds and announces itself; aria2, given
//     only the magnet, finds it and downloads (rtorrent: see below).
//
// transmission takes loopback nodes for martians: its cases are in
// TestInteropTransmission.
func TestInteropDHT(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "aria2c", "rtorrent")
	t.Parallel() // mostly waiting on the other clients' DHT rounds
	f := newCryptoFixture(t, 3<<20)
	magnet, m := f.magnet(t)
	for i, client := range []string{"aria2", "rtorrent"} {
		ip := func(n int) string { return fmt.Sprintf("127.0.8.%d", 10*i+n) }
		boot := newClient(t, Config{ListenAddr: ip(1) + ":0", DHT: true, DHTBootstrap: []string{}}).DHT().Addr().String()
		t.Run("swarmfs finds "+client, func(t *testing.T) {
			switch client {
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(2), DHTEntry: boot}, f.torrent, f.dir, true)
				a.WaitSeeding(t, 30*time.Second)
			case "rtorrent":
				r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip(2), DHTEntry: boot}, f.torrent, f.dir)
				r.WaitSeeding(t, 30*time.Second)
			}
			start := time.Now()
			f.fetchMagnet(t, newClient(t, dhtConfig(ip(3), boot)), m, 120*time.Second)
			t.Logf("swarmfs found %s on the DHT and downloaded from it in %v", client, time.Since(start).Round(time.Millisecond))
		})
		if client == "rtorrent" {
			// rtorrent 0.9.8 downloading (a magnet or a .torrent) did not
			// find a swarmfs seed on this DHT in 120 s, while aria2 does in
			// seconds and rtorrent seeding is found at once. On a DHT of
			// ten swarmfs nodes (10.59.0.0/24, in a network namespace) it
			// did, after 165 and 199 s, which fits its code: a DHT search
			// that fails is tried again on a failed tracker's back-off
			// (5, 10, 20, 40, 80 s: the sixth try at 155 s). Too slow for
			// the suite.
			continue
		}
		t.Run(client+" finds swarmfs", func(t *testing.T) {
			c := newClient(t, dhtConfig(ip(4), boot))
			tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: f.dir}})
			if err != nil {
				t.Fatal(err)
			}
			waitComplete(t, tor, 10*time.Second) // a seed: checked at once
			dir := t.TempDir()
			start := time.Now()
			var done func() bool
			switch client {
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(5), DHTEntry: boot}, magnet, dir, false)
				done = func() bool {
					st := a.Status(t)
					return st.TotalLength > 0 && st.CompletedLength == st.TotalLength && (st.Status == "complete" || st.Seeder)
				}
			case "rtorrent":
				r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip(5), DHTEntry: boot}, magnet, dir)
				done = func() bool {
					st := r.Status(t)
					return st.Complete && !st.Hashing && st.SizeBytes == f.mi.Info.TotalLength
				}
			}
			waitDone(t, client, 120*time.Second, tor, done)
			f.checkTree(t, dir)
			t.Logf("%s found swarmfs on the DHT and downloaded from it in %v", client, time.Since(start).Round(time.Millisecond))
		})
	}
}
