package engine

import (
	"context"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// waitStats polls Stats until cond holds.
func waitStats(t *testing.T, tor *Torrent, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := tor.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the stats after 30 s: %+v", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStatsHashFailures: pieces that fail their hash check are counted.
func TestStatsHashFailures(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1 << 20}})
	l := startLiar(t, "127.0.0.5", f.mi)
	_, tor, _ := leecher(t, f, Config{}, l.addr())
	waitStats(t, tor, "hash failure", func(s Stats) bool { return s.HashFailures > 0 })
}

// TestStatsActivity: while a reader streams from a slow seeder, the stats
// show the pieces in flight and the reader, in its file, past what it
// read, with a window; once it is closed, no reader.
func TestStatsActivity(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 100 << 10}, {Path: "b.bin", Size: 8 << 20}})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 512 << 10})
	c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: storage.File{Dir: t.TempDir()}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{Peers: peersOf(sc)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(1, false)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var off int64
	for range 8 {
		n, err := r.ReadAt(context.Background(), buf, off)
		if err != nil {
			t.Fatal(err)
		}
		off += int64(n)
	}
	s := waitStats(t, tor, "reader and pieces in flight", func(s Stats) bool {
		return len(s.Readers) == 1 && s.Readers[0].Pos >= off && len(s.Downloading) > 0
	})
	if rd := s.Readers[0]; rd.File != 1 || rd.Window <= 0 {
		t.Errorf("reader %+v: want file 1 with a window", rd)
	}
	r.Close()
	waitStats(t, tor, "reader gone", func(s Stats) bool { return len(s.Readers) == 0 })
}
