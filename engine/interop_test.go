package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// ltFixture is test data with a torrent made by libtorrent, announcing to a
// local opentracker.
type ltFixture struct {
	dir, root string
	path      string // the .torrent
	mi        *metainfo.MetaInfo
	tracker   *swarmtest.Tracker
}

func newLTFixture(t *testing.T, files []swarmtest.FileSpec, pieceLength int, udp bool) ltFixture {
	t.Helper()
	swarmtest.RequireTools(t, "libtorrent", "opentracker")
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	tr := swarmtest.StartTracker(t)
	url := tr.HTTP
	if udp {
		url = tr.UDP
	}
	path, ih := swarmtest.MakeTorrent(t, root, [][]string{{url}}, pieceLength)
	tr.Allow(ih)
	mi, err := metainfo.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if [20]byte(mi.InfoHash) != ih {
		t.Fatalf("info-hash %s, libtorrent says %x", mi.InfoHash, ih)
	}
	return ltFixture{dir: dir, root: root, path: path, mi: mi, tracker: tr}
}

func TestLibtorrentSeedsSwarmfsDownloads(t *testing.T) {
	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			f := newLTFixture(t, swarmtest.StandardFiles(), 32<<10, proto == "udp")
			lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2"})
			lt.AddTorrent(f.path, f.dir, true)
			lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)

			dir := t.TempDir()
			c := newClient(t, Config{Storage: storage.File{Dir: dir}})
			tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
			if err != nil {
				t.Fatal(err)
			}
			waitComplete(t, tor, 60*time.Second)
			swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
		})
	}
}

func TestSwarmfsSeedsLibtorrentDownloads(t *testing.T) {
	f := newLTFixture(t, swarmtest.StandardFiles(), 32<<10, false)
	c := newClient(t, Config{Storage: storage.File{Dir: f.dir}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, time.Second) // all data is on disk
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.3"})
	got := t.TempDir()
	lt.AddTorrent(f.path, got, false)
	lt.WaitComplete(t, f.mi.InfoHash, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(got, "data"))
	if tor.Stats().Uploaded == 0 {
		t.Error("swarmfs reports no upload")
	}
}

// TestThreeLibtorrentSeeders: swarmfs downloads from several libtorrent
// seeders at once.
func TestThreeLibtorrentSeeders(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "video.bin", Size: 12 << 20}, {Path: "notes.txt", Size: 777}}
	f := newLTFixture(t, files, 64<<10, false)
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip, UploadRate: 2 << 20})
		lt.AddTorrent(f.path, f.dir, true)
		lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
	}
	dir := t.TempDir()
	c := newClient(t, Config{Storage: storage.File{Dir: dir}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	maxPeers := 0
	deadline := time.After(90 * time.Second)
	for done := false; !done; {
		select {
		case <-tor.Complete():
			done = true
		case <-deadline:
			t.Fatalf("not complete: %+v", tor.Stats())
		case <-time.After(200 * time.Millisecond):
			maxPeers = max(maxPeers, tor.Stats().Peers)
		}
	}
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	if maxPeers < 2 {
		t.Errorf("downloaded from at most %d peer(s) at once; want several", maxPeers)
	}
}
