package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// partialSeedFiles: a.bin fills whole pieces, so a client holding only
// a.bin is a partial seed of the torrent.
var partialSeedFiles = []swarmtest.FileSpec{{Path: "a.bin", Size: 2 << 20}, {Path: "b.bin", Size: 2 << 20}}

// partialSeed starts a swarmfs client that holds a.bin only and downloads
// only for readers (none here).
func partialSeed(t *testing.T, f ltFixture, logf func(string, ...any)) (*Client, *Torrent) {
	t.Helper()
	old := uploadOnlyIdle
	uploadOnlyIdle = time.Second
	t.Cleanup(func() { uploadOnlyIdle = old })
	dir := t.TempDir()
	swarmtest.WriteFiles(t, filepath.Join(dir, "data"), partialSeedFiles[:1])
	c := newClient(t, Config{ListenAddr: "127.0.0.9:0", Storage: storage.File{Dir: dir}, NoTrackers: true, Logf: logf})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := tor.Stats(); st.PiecesHave != st.Pieces/2 {
		t.Fatalf("partial seed holds %d of %d pieces", st.PiecesHave, st.Pieces)
	}
	return c, tor
}

// TestUploadOnlySent: a partial seed that wants nothing says upload_only
// (BEP 21), and libtorrent, which downloads a.bin from it, reports it.
func TestUploadOnlySent(t *testing.T) {
	f := newLTFixture(t, partialSeedFiles, 64<<10, false)
	c, _ := partialSeed(t, f, nil)
	// Slowly, so that it still wants a.bin from us when we say upload_only.
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.10", NoTrackers: true, DownloadRate: 128 << 10})
	lt.AddTorrent(f.path, t.TempDir(), false)
	lt.ConnectPeer(f.mi.InfoHash, c.Addr().String())
	deadline := time.Now().Add(15 * time.Second)
	for {
		pt := lt.PeerTotals(f.mi.InfoHash)
		for _, p := range pt.Peers {
			if p.UploadOnly && !p.Seed && p.Interesting {
				t.Logf("libtorrent sees %+v", p)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent never saw an upload_only partial seed it wants from: %+v", pt.Peers)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUploadOnlyHonoured: a partial seed that wants nothing drops a
// libtorrent peer that says upload_only too (upload mode): neither wants
// anything from the other.
func TestUploadOnlyHonoured(t *testing.T) {
	f := newLTFixture(t, partialSeedFiles, 64<<10, false)
	logs := newLogLines(t)
	c, tor := partialSeed(t, f, logs.logf)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.11", NoTrackers: true})
	lt.AddUploadMode(f.path, f.dir) // it holds everything but downloads nothing
	lt.ConnectPeer(f.mi.InfoHash, c.Addr().String())
	if _, ok := logs.wait(15*time.Second, "127.0.0.11", "upload_only"); !ok {
		t.Fatalf("the upload_only peer was kept: %d peers", tor.Stats().Peers)
	}
}
