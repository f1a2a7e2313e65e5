package engine

import (
	"path/filepath"
	"slices"
	"sync"
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

// openNames is a storage provider that records the name each torrent's
// store is opened under.
type openNames struct {
	storage.Provider
	mu    sync.Mutex
	names []metainfo.Hash
}

func (o *openNames) Open(ih metainfo.Hash, info *metainfo.Info) (storage.Torrent, []int, error) {
	o.mu.Lock()
	o.names = append(o.names, ih)
	o.mu.Unlock()
	return o.Provider.Open(ih, info)
}

// TestAddHybridUnderV2Name: TorrentOptions.Name makes a hybrid go by its
// truncated v2 hash, its store included (where a torrent first added by
// its btmh magnet keeps its pieces); its v1 hash is the default; any
// other name is refused.
func TestAddHybridUnderV2Name(t *testing.T) {
	f := newFixtureFormat(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 300 << 10}}, metainfo.FormatHybrid)
	v2name := f.mi.InfoHashV2.Truncate()
	st := &openNames{Provider: storage.File{Dir: f.dir}}
	c := newClient(t, Config{Storage: st})
	if _, err := c.AddTorrent(f.mi, TorrentOptions{Name: metainfo.Hash{1}}); err == nil {
		t.Fatal("AddTorrent under a name that is neither of the hybrid's hashes: no error")
	}
	tor, err := c.AddTorrent(f.mi, TorrentOptions{Name: v2name})
	if err != nil {
		t.Fatal(err)
	}
	if tor.InfoHash() != v2name {
		t.Errorf("InfoHash() = %s, want the v2 name %s", tor.InfoHash(), v2name)
	}
	st.mu.Lock()
	names := slices.Clone(st.names)
	st.mu.Unlock()
	if len(names) != 1 || names[0] != v2name {
		t.Errorf("store opened as %v, want [%s]", names, v2name)
	}
	if got, ok := c.Torrent(v2name); !ok || got != tor {
		t.Error("the client does not find the hybrid by its v2 name")
	}
	if err := c.RemoveTorrent(v2name); err != nil {
		t.Fatal(err)
	}
	tor, err = c.AddTorrent(f.mi, TorrentOptions{Name: f.mi.InfoHash})
	if err != nil {
		t.Fatal(err)
	}
	if tor.InfoHash() != f.mi.InfoHash {
		t.Errorf("InfoHash() = %s, want the v1 name %s", tor.InfoHash(), f.mi.InfoHash)
	}
	if got, ok := c.Torrent(v2name); !ok || got != tor {
		t.Error("a hybrid under its v1 name is not found by its v2 name")
	}
}
