package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestHybridByBtihMagnetTakesV2Name: a hybrid added by its btih magnet
// alone learns that it is a hybrid from its info; from then on it is
// announced under its truncated v2 hash too, and lets in peers that name
// it so: once the seeder has gone, a leecher that knows only the btmh
// magnet finds it through the tracker and gets every file from it.
func TestHybridByBtihMagnetTakesV2Name(t *testing.T) {
	tr := swarmtest.StartGoTracker(t)
	f := newFixtureFormat(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 300 << 10}}, metainfo.FormatHybrid)
	v2name := f.mi.InfoHashV2.Truncate()
	sc := newClient(t, Config{ListenAddr: "127.0.0.2:0", Storage: storage.File{Dir: f.dir}})
	if _, err := sc.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Trackers: [][]string{{tr.HTTP4}}}); err != nil {
		t.Fatal(err)
	}

	btih := &metainfo.Magnet{InfoHash: f.mi.InfoHash, Trackers: []string{tr.HTTP4}}
	lc, tor, dir := magnetLeecher(t, btih.String(), Config{ListenAddr: "127.0.0.3:0"})
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	if got, ok := lc.Torrent(v2name); !ok || got != tor {
		t.Error("the client does not find the hybrid by its v2 name")
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(tr.Peers(v2name)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the tracker knows %v under the v2 name: the magnet's client is not among them (v1 name: %v)", tr.Peers(v2name), tr.Peers(f.mi.InfoHash))
		}
		time.Sleep(50 * time.Millisecond)
	}
	sc.Close()

	btmh := &metainfo.Magnet{InfoHash: v2name, InfoHashV2: f.mi.InfoHashV2, Trackers: []string{tr.HTTP4}}
	_, tor2, dir2 := magnetLeecher(t, btmh.String(), Config{ListenAddr: "127.0.0.4:0"})
	waitComplete(t, tor2, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir2, "data"))
}
