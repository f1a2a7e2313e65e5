package engine

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// magnetLeecher starts a client downloading a magnet into a fresh folder.
func magnetLeecher(t *testing.T, uri string, cfg Config, peers ...netip.AddrPort) (*Client, *Torrent, string) {
	t.Helper()
	m, err := metainfo.ParseMagnet(uri)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Storage = storage.File{Dir: dir}
	c := newClient(t, cfg)
	tor, err := c.AddMagnet(m, TorrentOptions{DownloadAll: true, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	return c, tor, dir
}

func waitInfo(t *testing.T, tor *Torrent, timeout time.Duration) {
	t.Helper()
	select {
	case <-tor.InfoReady():
	case <-time.After(timeout):
		s := tor.Stats()
		t.Fatalf("no metadata after %v: %d peers, %d known", timeout, s.Peers, s.KnownPeers)
	}
}

// checkInfo compares the fetched metainfo with the original.
func checkInfo(t *testing.T, tor *Torrent, want *metainfo.MetaInfo) {
	t.Helper()
	mi := tor.MetaInfo()
	if mi == nil || tor.Info() == nil {
		t.Fatal("InfoReady closed but no info")
	}
	if !bytes.Equal(mi.InfoBytes, want.InfoBytes) {
		t.Fatalf("fetched info dictionary differs from the torrent's (%d vs %d bytes)", len(mi.InfoBytes), len(want.InfoBytes))
	}
	if tor.Name() != want.Info.Name {
		t.Errorf("Name() = %q after metadata, want %q", tor.Name(), want.Info.Name)
	}
	if _, err := mi.Marshal(); err != nil {
		t.Errorf("MetaInfo().Marshal: %v", err)
	}
}

// TestMagnetFromSwarmfs: a swarmfs seeder serves its metadata; a magnet
// leecher shows nothing before it, then fetches it and downloads
// byte-exact.
func TestMagnetFromSwarmfs(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	uri := (&metainfo.Magnet{InfoHash: f.mi.InfoHash, DisplayName: "shown before"}).String()
	_, tor, dir := magnetLeecher(t, uri, Config{})

	// No peer yet: nothing is known, and nothing blocks.
	if tor.Info() != nil || tor.MetaInfo() != nil {
		t.Fatal("info known before any peer")
	}
	if got := tor.Name(); got != "shown before" {
		t.Errorf("Name() = %q before metadata, want the dn", got)
	}
	if _, err := tor.NewReader(0, false); !errors.Is(err, ErrNoInfo) {
		t.Errorf("NewReader before metadata: %v, want ErrNoInfo", err)
	}
	if tor.HavePiece(0) || tor.FileBytesCompleted(0) != 0 || tor.BytesCompleted() != 0 || tor.Stats().HasInfo {
		t.Error("progress reported before metadata")
	}
	select {
	case <-tor.InfoReady():
		t.Fatal("InfoReady closed before any peer")
	default:
	}

	tor.AddPeers([]netip.AddrPort{sc.Addr()})
	waitInfo(t, tor, 30*time.Second)
	checkInfo(t, tor, f.mi)
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestMagnetReadBeforeInfo: a reader opened as soon as the info arrives
// gets its bytes.
func TestMagnetReadBeforeInfo(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "a.bin", Size: 3<<20 + 17}}
	f := newFixture(t, 64<<10, files)
	sc, _ := seeder(t, f, Config{})
	uri := (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String()
	_, tor, _ := magnetLeecher(t, uri, Config{}, sc.Addr())
	if got := tor.Name(); got != f.mi.InfoHash.String() && tor.Info() == nil {
		t.Errorf("Name() = %q without dn, want the hex info-hash", got)
	}
	waitInfo(t, tor, 30*time.Second)
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buf := make([]byte, 100<<10)
	off := int64(2 << 20)
	if _, err := r.ReadAt(ctx, buf, off); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(buf))
	files[0].ReadAt(want, off)
	if !bytes.Equal(buf, want) {
		t.Fatal("read returned wrong bytes")
	}
}

// TestAddTorrentCompletesMagnet: adding the .torrent of a magnet that
// waits for its metadata gives it the info at once.
func TestAddTorrentCompletesMagnet(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "x", Size: 100 << 10}})
	c := newClient(t, Config{})
	m := &metainfo.Magnet{InfoHash: f.mi.InfoHash}
	tor, err := c.AddMagnet(m, TorrentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.AddTorrent(f.mi, TorrentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again != tor {
		t.Fatal("AddTorrent of a magnet's torrent returned another Torrent")
	}
	waitInfo(t, tor, 10*time.Second)
	checkInfo(t, tor, f.mi)
}
