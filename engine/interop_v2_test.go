package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// newLTFixtureFormat is newLTFixture for a v1, v2 or hybrid torrent made
// by libtorrent, announcing to a local opentracker over HTTP.
func newLTFixtureFormat(t *testing.T, files []swarmtest.FileSpec, pieceLength int, format string) (ltFixture, swarmtest.TorrentInfo) {
	t.Helper()
	swarmtest.RequireTools(t, "libtorrent", "opentracker")
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	tr := swarmtest.StartTracker(t)
	ti := swarmtest.MakeTorrentFormat(t, root, [][]string{{tr.HTTP}}, pieceLength, format)
	tr.Allow(ti.InfoHash)
	mi, err := metainfo.Load(ti.Path)
	if err != nil {
		t.Fatal(err)
	}
	if [20]byte(mi.InfoHash) != ti.InfoHash || [32]byte(mi.InfoHashV2) != ti.InfoHashV2 {
		t.Fatalf("info-hashes %s %s, libtorrent says %x %x", mi.InfoHash, mi.InfoHashV2, ti.InfoHash, ti.InfoHashV2)
	}
	if want := format != "v2"; mi.Info.HasV1() != want || !mi.Info.HasV2() {
		t.Fatalf("%s torrent parsed with v1 %v, v2 %v", format, mi.Info.HasV1(), mi.Info.HasV2())
	}
	return ltFixture{dir: dir, root: root, path: ti.Path, mi: mi, tracker: tr}, ti
}

// TestV2LibtorrentSeedsSwarmfs: libtorrent makes a v2-only and a hybrid
// torrent (an empty file, files smaller than a piece, a file of a hundred
// pieces) and seeds it; swarmfs downloads every file byte-exact, from the
// .torrent and from a magnet (urn:btmh alone for the v2-only torrent,
// with urn:btih for the hybrid), found through the tracker. For the
// v2-only magnet the piece layers come from libtorrent's hashes messages.
func TestV2LibtorrentSeedsSwarmfs(t *testing.T) {
	for _, format := range []string{"v2", "hybrid"} {
		for _, how := range []string{"torrent", "magnet"} {
			t.Run(format+"/"+how, func(t *testing.T) {
				f, ti := newLTFixtureFormat(t, swarmtest.StandardFiles(), 32<<10, format)
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2"})
				lt.AddTorrent(f.path, f.dir, true)
				lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)

				dir := t.TempDir()
				logs := newLogLines(t)
				c := newClient(t, Config{Storage: storage.File{Dir: dir}, Logf: logs.logf})
				var tor *Torrent
				var err error
				if how == "torrent" {
					tor, err = c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
				} else {
					ih := ti.InfoHash
					if format == "v2" {
						ih = [20]byte{} // btmh alone
					}
					var m *metainfo.Magnet
					if m, err = metainfo.ParseMagnet(swarmtest.MagnetV2(ih, ti.InfoHashV2, f.tracker.HTTP)); err != nil {
						t.Fatal(err)
					}
					tor, err = c.AddMagnet(m, TorrentOptions{DownloadAll: true})
				}
				if err != nil {
					t.Fatal(err)
				}
				if tor.InfoHash() != f.mi.InfoHash {
					t.Fatalf("torrent named %s, want %s", tor.InfoHash(), f.mi.InfoHash)
				}
				waitComplete(t, tor, 90*time.Second)
				swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
				if how == "magnet" {
					checkInfo(t, tor, f.mi)
					if format == "v2" {
						if _, ok := logs.find("piece layer of", "big.bin", "received"); !ok {
							t.Error("big.bin's piece layer was not fetched from libtorrent")
						}
					}
				}
			})
		}
	}
}

// TestV2SwarmfsSeedsLibtorrent: swarmfs seeds a v2-only torrent made by
// libtorrent to a libtorrent leecher that has the .torrent, and to one
// that has only the btmh magnet: that one takes the info dictionary and
// every piece layer from swarmfs (ut_metadata, hash requests).
func TestV2SwarmfsSeedsLibtorrent(t *testing.T) {
	for _, how := range []string{"torrent", "magnet"} {
		t.Run(how, func(t *testing.T) {
			f, ti := newLTFixtureFormat(t, swarmtest.StandardFiles(), 32<<10, "v2")
			c := newClient(t, Config{Storage: storage.File{Dir: f.dir}, ListenAddr: "127.0.0.2:0"})
			tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
			if err != nil {
				t.Fatal(err)
			}
			waitComplete(t, tor, time.Second) // all data is on disk, checked against the trees
			lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.3"})
			got := t.TempDir()
			if how == "torrent" {
				lt.AddTorrent(f.path, got, false)
			} else {
				lt.AddMagnet(swarmtest.MagnetV2([20]byte{}, ti.InfoHashV2, f.tracker.HTTP), got)
			}
			lt.WaitComplete(t, ti.InfoHash, 90*time.Second)
			swarmtest.VerifyTree(t, f.root, filepath.Join(got, "data"))
			if tor.Stats().Uploaded == 0 {
				t.Error("swarmfs reports no upload")
			}
		})
	}
}

// TestV2HybridSeedsLibtorrent: swarmfs seeds a hybrid torrent made by
// libtorrent to three libtorrent leechers at once, one with the .torrent,
// one with only the btih magnet and one with only the btmh magnet (both
// take the info dictionary from swarmfs; the last names the swarm by the
// v2 hash truncated, which swarmfs answers to as well): all get every
// file byte-exact.
//
// The v1-only clients here cannot take part: aria2 1.36 computes another
// info-hash for a hybrid's info dictionary (aria2c -S shows it) and after
// a magnet's metadata refuses the swarm's hash, and transmission 3.00
// cannot parse a hybrid .torrent.
func TestV2HybridSeedsLibtorrent(t *testing.T) {
	f, ti := newLTFixtureFormat(t, swarmtest.InteropFiles(3<<20), 32<<10, "hybrid")
	c := newClient(t, Config{Storage: storage.File{Dir: f.dir}, ListenAddr: "127.0.0.2:0"})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, time.Second)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	lt1 := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.3"})
	lt1.AddTorrent(f.path, dirs[0], false)
	lt2 := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.4"})
	lt2.AddMagnet(swarmtest.Magnet(ti.InfoHash, ""), dirs[1])
	lt3 := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.5"})
	lt3.AddMagnet(swarmtest.MagnetV2([20]byte{}, ti.InfoHashV2), dirs[2])
	v2name := [20]byte(ti.InfoHashV2[:20])
	lt1.ConnectPeer(ti.InfoHash, c.Addr().String())
	lt2.ConnectPeer(ti.InfoHash, c.Addr().String())
	lt3.ConnectPeer(v2name, c.Addr().String())
	lt1.WaitComplete(t, ti.InfoHash, 90*time.Second)
	lt2.WaitComplete(t, ti.InfoHash, 90*time.Second)
	lt3.WaitComplete(t, v2name, 90*time.Second)
	for _, d := range dirs {
		swarmtest.VerifyTree(t, f.root, filepath.Join(d, "data"))
	}
}

// TestV2MagnetViaDHT: with no tracker anywhere, a libtorrent seeder of a
// v2-only torrent announces it on a loopback DHT (under the v2 hash
// truncated) and swarmfs, given only its urn:btmh magnet, finds it there,
// takes the info (checked against the SHA-256) and the piece layers from
// libtorrent, and downloads every file byte-exact.
func TestV2MagnetViaDHT(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	boot := dhtNet(t, 3)
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, swarmtest.StandardFiles())
	ti := swarmtest.MakeTorrentFormat(t, root, nil, 32<<10, "v2")
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", DHT: true, DHTBootstrap: []string{boot}, NoTrackers: true})
	lt.AddTorrent(ti.Path, dir, true)
	lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)
	lt.WaitDHTNodes(t, 1, 30*time.Second)
	lt.DHTAnnounce(ti.InfoHash, 0)

	_, tor, got := magnetLeecher(t, swarmtest.MagnetV2([20]byte{}, ti.InfoHashV2), dhtConfig("127.0.0.32", boot))
	waitInfo(t, tor, 60*time.Second)
	if mi := tor.MetaInfo(); [32]byte(mi.InfoHashV2) != ti.InfoHashV2 {
		t.Fatalf("v2 info-hash %s, want %x", mi.InfoHashV2, ti.InfoHashV2)
	}
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, root, filepath.Join(got, "data"))
}
