package engine

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestV2MagnetLayersKept: the piece layers a v2 magnet fetched from peers
// come with MetaInfo once LayersReady is closed, so they can be kept with
// the torrent (the session records that metainfo in the cache). After a
// restart on the same cache from that record, with no peer answering hash
// requests, the cached pieces are there and served at once, and the
// missing ones are checked as soon as a peer that sends pieces (but no
// hashes) returns.
func TestV2MagnetLayersKept(t *testing.T) {
	file := swarmtest.FileSpec{Path: "a.bin", Size: 1<<20 + 5000}
	f := newFixtureFormat(t, 32<<10, []swarmtest.FileSpec{file}, metainfo.FormatV2)
	cacheDir := t.TempDir()
	head := make([]byte, 64<<10) // two pieces
	file.ReadAt(head, 0)
	readHead := func(tor *Torrent) {
		t.Helper()
		r, err := tor.NewReader(0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got := make([]byte, len(head))
		if _, err := r.ReadAt(ctx, got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, head) {
			t.Fatal("the head of a.bin read back wrong")
		}
	}

	// Round 1: the btmh magnet from a swarmfs seeder (which answers hash
	// requests), the head read into the cache.
	var record []byte
	func() {
		sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
		defer sc.Close()
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
		tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash, InfoHashV2: f.mi.InfoHashV2}, TorrentOptions{Peers: peersOf(sc)})
		if err != nil {
			t.Fatal(err)
		}
		waitInfo(t, tor, 30*time.Second)
		if tor.MetaInfo().Info.HasPieceLayers() {
			t.Fatal("a magnet's info came with piece layers")
		}
		readHead(tor)
		select {
		case <-tor.LayersReady():
		case <-time.After(30 * time.Second):
			t.Fatal("the piece layers were not all fetched")
		}
		mi := tor.MetaInfo()
		if !mi.Info.HasPieceLayers() {
			t.Fatal("MetaInfo lacks the piece layers fetched")
		}
		if record, err = mi.Marshal(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !(tor.HavePiece(0) && tor.HavePiece(1)) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond) // read from memory; stored soon
		}
		if !tor.HavePiece(0) || !tor.HavePiece(1) || tor.HavePiece(f.mi.Info.NumPieces()-1) {
			t.Fatalf("round 1 must end with the head, not the tail: %v %v %v", tor.HavePiece(0), tor.HavePiece(1), tor.HavePiece(f.mi.Info.NumPieces()-1))
		}
	}()

	// Round 2: the same cache, the record read back (its layers checked
	// against the pieces roots by Parse), no peer at first.
	mi, err := metainfo.Parse(record)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := cache.Open(cache.Options{Dir: cacheDir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: storage.NewCache(ca)})
	tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	if !tor.HavePiece(0) || !tor.HavePiece(1) {
		t.Fatal("the cached pieces are not there after the restart")
	}
	readHead(tor)
	// A peer that sends pieces and never answers a hash request: the
	// pieces it sends are checked against the layers kept.
	seed := &scriptSeed{fast: true, file: file}
	p := startScriptSeed(t, "127.0.0.4", f.mi, seed)
	tor.AddPeers([]netip.AddrPort{p.addr()})
	waitComplete(t, tor, 60*time.Second)
}
