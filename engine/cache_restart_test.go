package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestCacheRestartSeeds: a client downloads into the badger cache and stops;
// restarted on the same cache with the original seeder gone, it has every
// piece at once, without downloading or re-hashing, and seeds them to a
// newcomer.
func TestCacheRestartSeeds(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	cacheDir := t.TempDir()

	// Round 1: download into the cache from a seeder.
	func() {
		sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
		ca, err := cache.Open(cache.Options{Dir: cacheDir, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		c, err := New(Config{ListenAddr: "127.0.0.3:0", NoTrackers: true, Storage: storage.NewCache(ca), Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: peersOf(sc)})
		if err != nil {
			t.Fatal(err)
		}
		waitComplete(t, tor, 60*time.Second)
		sc.Close()
	}()

	// Round 2: the same cache, no seeder anywhere.
	ca, err := cache.Open(cache.Options{Dir: cacheDir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: storage.NewCache(ca)})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tor.Complete():
	default:
		t.Fatalf("restarted on the cache with %d of %d pieces", tor.Stats().PiecesHave, f.mi.Info.NumPieces())
	}
	if d := tor.Stats().Downloaded; d != 0 {
		t.Fatalf("restart downloaded %d bytes", d)
	}
	// A newcomer downloads everything from the restarted client.
	_, lt, dir := leecher(t, f, Config{ListenAddr: "127.0.0.4:0"}, c.Addr())
	waitComplete(t, lt, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	if tor.Stats().Uploaded == 0 {
		t.Error("the restarted client uploaded nothing")
	}
}
