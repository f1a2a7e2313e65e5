package session

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestWarmRestartTrackerDown: a torrent read once, from the one seeder its
// tracker named, is restored after a restart while the tracker is down and
// the DHT off: the session dials the peer kept from the first run at once,
// and a piece not read before arrives within seconds.
func TestWarmRestartTrackerDown(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	big := swarmtest.FileSpec{Path: "big.bin", Size: 8 << 20, Seed: 7}
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{big})

	// The tracker hands out the seeder, whose address is known once it
	// runs; it goes down after the first run.
	var seederAddr atomic.Pointer[netip.AddrPort]
	tr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var peers []byte
		if a := seederAddr.Load(); a != nil {
			peers = append(a.Addr().AsSlice(), byte(a.Port()>>8), byte(a.Port()))
		}
		fmt.Fprintf(w, "d8:intervali1800e5:peers%d:%se", len(peers), peers)
	}))
	defer tr.Close()
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 256 << 10, NoDate: true, Trackers: [][]string{{tr.URL + "/announce"}}})
	if err != nil {
		t.Fatal(err)
	}
	torrentBytes, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := engine.New(engine.Config{ListenAddr: "127.0.0.2:0", NoTrackers: true, NoUTP: true, Storage: storage.File{Dir: dir}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := sc.AddTorrent(mi, engine.TorrentOptions{DownloadAll: true}); err != nil {
		t.Fatal(err)
	}
	a := sc.Addr()
	seederAddr.Store(&a)

	cacheDir := t.TempDir()
	// run starts a client and a session on the cache, lets f read, and
	// closes them all (the session first, as swarmfs mount does).
	run := func(f func(s *Session)) {
		ca, err := cache.Open(cache.Options{Dir: cacheDir, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		c, err := engine.New(engine.Config{ListenAddr: "127.0.0.3:0", NoUTP: true, Storage: storage.NewCache(ca), Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := New(Config{Engine: NewEngine(c, engine.TorrentOptions{}), Store: ca, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(s)
	}
	read := func(tor *Torrent, off int64, timeout time.Duration) time.Duration {
		t.Helper()
		r, err := tor.NewReader(0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		buf := make([]byte, 16<<10)
		t0 := time.Now()
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		return time.Since(t0)
	}

	run(func(s *Session) {
		tor, err := s.AddTorrentFile(torrentBytes)
		if err != nil {
			t.Fatal(err)
		}
		read(tor, 0, 30*time.Second)
	})
	tr.Close()

	run(func(s *Session) {
		if n := s.Restore(); n != 1 {
			t.Fatalf("restored %d torrents, want 1", n)
		}
		tor := s.Torrents()[0]
		// The last piece: not read in the first run (readahead from 0
		// does not reach it), so it must come from the seeder.
		el := read(tor, big.Size-16<<10, 10*time.Second)
		t.Logf("first byte of an uncached piece %v after the restore, tracker down", el)
	})
}
