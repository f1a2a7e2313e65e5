package engine

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// superSeedRate caps the initial seed in TestSuperSeedFourLibtorrentLeechers:
// a small uplink, next to leechers that trade among themselves unlimited.
const superSeedRate = 3 << 20

// superSeedRun is one initial seed serving four fresh libtorrent leechers
// that find it and each other through a fresh opentracker. seed starts the
// seed and returns a function reporting the bytes it uploaded. It returns
// those bytes, and the sum of what the leechers counted from the seed's IP.
func superSeedRun(t *testing.T, files []swarmtest.FileSpec, seed func(t *testing.T, torrentPath, dataDir string, mi *metainfo.MetaInfo) func() int64) (uploaded, counted int64) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	tr := swarmtest.StartTracker(t)
	path, ih := swarmtest.MakeTorrent(t, root, [][]string{{tr.HTTP}}, 256<<10)
	tr.Allow(ih)
	mi, err := metainfo.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	up := seed(t, path, dir, mi)

	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	lts := make([]*swarmtest.LT, len(ips))
	dirs := make([]string, len(ips))
	for i, ip := range ips {
		lts[i] = swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip})
		dirs[i] = t.TempDir()
	}
	for i, l := range lts {
		l.AddTorrent(path, dirs[i], false)
	}
	var wg sync.WaitGroup
	for _, l := range lts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.WaitComplete(t, ih, 120*time.Second)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	uploaded = up()
	for i, l := range lts {
		swarmtest.VerifyTree(t, root, filepath.Join(dirs[i], "data"))
		pt := l.PeerTotals(ih)
		counted += pt.Totals[superSeedIP].Download
	}
	return uploaded, counted
}

// superSeedIP is where the initial seed listens.
const superSeedIP = "127.0.0.6"

// TestSuperSeedFourLibtorrentLeechers: four libtorrent leechers download
// from a swarmfs initial seed capped at a few MB/s. Super-seeding (BEP 16)
// must upload little more than the content once; normal seeding and
// libtorrent's own super-seeding are measured in the same run for
// comparison.
func TestSuperSeedFourLibtorrentLeechers(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "opentracker")
	files := []swarmtest.FileSpec{{Path: "video.bin", Size: 12 << 20}, {Path: "notes.txt", Size: 1234}}
	size := swarmtest.TotalSize(files)
	swarmfsSeed := func(super bool) func(t *testing.T, _, dataDir string, mi *metainfo.MetaInfo) func() int64 {
		return func(t *testing.T, _, dataDir string, mi *metainfo.MetaInfo) func() int64 {
			c := newClient(t, Config{
				ListenAddr: superSeedIP + ":0",
				Storage:    storage.File{Dir: dataDir},
				UploadRate: superSeedRate,
			})
			tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true, SuperSeed: super})
			if err != nil {
				t.Fatal(err)
			}
			waitComplete(t, tor, 5*time.Second)
			return func() int64 { return tor.Stats().Uploaded }
		}
	}
	ltSuperSeed := func(t *testing.T, torrentPath, dataDir string, mi *metainfo.MetaInfo) func() int64 {
		l := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: superSeedIP, UploadRate: superSeedRate})
		l.AddSuperSeed(torrentPath, dataDir)
		l.WaitSeeding(t, mi.InfoHash, 30*time.Second)
		return func() int64 { return l.Status(mi.InfoHash).TotalUpload }
	}
	runs := []struct {
		name string
		seed func(t *testing.T, torrentPath, dataDir string, mi *metainfo.MetaInfo) func() int64
	}{
		{"swarmfs-super", swarmfsSeed(true)},
		{"swarmfs-normal", swarmfsSeed(false)},
		{"libtorrent-super", ltSuperSeed},
	}
	ratios := map[string]float64{}
	var report string
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			up, counted := superSeedRun(t, files, r.seed)
			ratios[r.name] = float64(up) / float64(size)
			report += fmt.Sprintf("\n  %-17s uploaded %9d bytes = %.2fx the content (leechers counted %d = %.2fx)",
				r.name, up, ratios[r.name], counted, float64(counted)/float64(size))
		})
	}
	t.Logf("initial seed capped at %d B/s, four libtorrent leechers, %d bytes:%s", superSeedRate, size, report)
	// The goal is 1.1x (1.04-1.08x on a quiet machine); a loaded
	// one stretches the leechers' passing on, and an offer that stands
	// superPassOn is replaced, so the test allows a little more. Normal
	// seeding is about 2x: the bound still tells them apart.
	if got, ok := ratios["swarmfs-super"]; ok && got > 1.2 {
		t.Errorf("super-seeding uploaded %.2fx the content; want at most 1.2x (goal 1.1x)", got)
	}
	if got, ok := ratios["swarmfs-super"]; ok && got > 1.1 {
		t.Logf("super-seeding uploaded %.2fx the content, above the 1.1x goal (a loaded machine?)", got)
	}
}
