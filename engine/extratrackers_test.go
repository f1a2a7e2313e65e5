package engine

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

func TestWithExtraTier(t *testing.T) {
	tiers := [][]string{{"http://a/announce"}, {}}
	got := withExtraTier(tiers, []string{"udp://b:1", "http://a/announce", "udp://b:1", ""})
	want := [][]string{{"http://a/announce"}, {"udp://b:1"}}
	if len(got) != len(want) || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := withExtraTier(tiers, []string{"http://a/announce"}); len(got) != 2 {
		t.Fatalf("nothing new: got %q", got)
	}
}

// TestExtraTrackers: the extra trackers are a last tier (BEP 12): when the
// torrent's own tracker is down, a public torrent announces to the extra
// one (opentracker), which shows in its Stats.Trackers; a private one
// never does (BEP 27).
func TestExtraTrackers(t *testing.T) {
	swarmtest.RequireTools(t, "opentracker")
	for _, private := range []bool{false, true} {
		t.Run(map[bool]string{false: "public", true: "private"}[private], func(t *testing.T) {
			dead := "http://127.0.0.1:" + strconv.Itoa(swarmtest.FreePort(t, "127.0.0.1")) + "/announce"
			extra := swarmtest.StartTracker(t)
			dir := t.TempDir()
			root := filepath.Join(dir, "data")
			swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{{Path: "x.bin", Size: 100 << 10}})
			mi, err := metainfo.Create(root, metainfo.CreateOptions{Trackers: [][]string{{dead}}, Private: private, NoDate: true})
			if err != nil {
				t.Fatal(err)
			}
			extra.Allow(mi.InfoHash)
			c := newClient(t, Config{Storage: storage.File{Dir: dir}})
			tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true, ExtraTrackers: []string{extra.UDP}})
			if err != nil {
				t.Fatal(err)
			}
			self := c.Addr().String()
			var urls []string
			for _, ts := range tor.Stats().Trackers {
				urls = append(urls, ts.URL)
			}
			if private {
				time.Sleep(3 * time.Second)
				if heard := slices.Contains(extra.Peers(t, mi.InfoHash), self); heard || slices.Contains(urls, extra.UDP) {
					t.Errorf("a private torrent used the extra tracker: heard %v, trackers %q", heard, urls)
				}
				return
			}
			if !slices.Equal(urls, []string{dead, extra.UDP}) {
				t.Errorf("trackers %q, want the torrent's, then the extra one", urls)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !slices.Contains(extra.Peers(t, mi.InfoHash), self) {
				if time.Now().After(deadline) {
					t.Fatalf("the extra tracker never heard of %s; trackers %+v", self, tor.Stats().Trackers)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
