package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// waitSwarm waits until a torrent's scrape answers satisfy ok.
func waitSwarm(t *testing.T, tor *Torrent, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := tor.Stats()
		if st.Swarm != nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("swarm %+v, no seeders %v; trackers %+v", st.Swarm, st.NoSeeders, st.Trackers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScrapeNoSeeders: a torrent whose tracker (opentracker over HTTP)
// counts no seeder says so: Stats.NoSeeders, and the tracker's scrape in
// Stats.Trackers.
func TestScrapeNoSeeders(t *testing.T) {
	f := newLTFixture(t, swarmtest.StandardFiles(), 32<<10, false)
	c := newClient(t, Config{Storage: storage.File{Dir: t.TempDir()}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	st := waitSwarm(t, tor, func(st Stats) bool { return st.Swarm.Leechers >= 1 })
	if st.Swarm.Seeders != 0 || !st.NoSeeders {
		t.Errorf("swarm %+v, no seeders %v; want 0 seeders, said", st.Swarm, st.NoSeeders)
	}
	if len(st.Trackers) != 1 || st.Trackers[0].Scrape == nil || st.Trackers[0].URL != f.tracker.HTTP {
		t.Errorf("trackers %+v", st.Trackers)
	}
}

// TestScrapeSeeders: over UDP, the tracker counts the libtorrent seed;
// the torrent completes and no longer says "no seeders".
func TestScrapeSeeders(t *testing.T) {
	f := newLTFixture(t, swarmtest.StandardFiles(), 32<<10, true)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2"})
	lt.AddTorrent(f.path, f.dir, true)
	lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
	dir := t.TempDir()
	c := newClient(t, Config{Storage: storage.File{Dir: dir}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	waitSwarm(t, tor, func(st Stats) bool { return st.Swarm.Seeders >= 1 })
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	if st := tor.Stats(); st.NoSeeders {
		t.Errorf("complete, yet no seeders: %+v", st.Swarm)
	}
}
