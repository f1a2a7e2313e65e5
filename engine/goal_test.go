package engine

import (
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestSeedRatioStopsUploading: a swarmfs seed with a ratio goal of 0.25,
// capped at 1 MB/s, serves a libtorrent leecher that has no other source.
// Once the goal is met the leecher gets nothing more: it stays incomplete,
// with about a quarter of the content.
func TestSeedRatioStopsUploading(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "video.bin", Size: 8 << 20}}
	f := newLTFixture(t, files, 256<<10, false)
	c := newClient(t, Config{ListenAddr: "127.0.0.7:0", Storage: storage.File{Dir: f.dir}, UploadRate: 1 << 20, NoTrackers: true})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, SeedRatio: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 5*time.Second)
	if st := tor.Stats(); st.SeedState != SeedStateSeeding || st.SeedGoal != "ratio 0.25" {
		t.Errorf("before any upload: state %q, goal %q", st.SeedState, st.SeedGoal)
	}
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.8", NoTrackers: true})
	lt.AddTorrent(f.path, t.TempDir(), false)
	lt.ConnectPeer(f.mi.InfoHash, c.Addr().String())
	select {
	case <-tor.GoalReached():
	case <-time.After(30 * time.Second):
		t.Fatalf("goal not reached: %+v; leecher %+v", tor.Stats(), lt.Status(f.mi.InfoHash))
	}
	before := lt.Status(f.mi.InfoHash)
	time.Sleep(3 * time.Second)
	after := lt.Status(f.mi.InfoHash)
	st := tor.Stats()
	t.Logf("goal reached: uploaded %d (ratio %.2f); leecher had %d, then %d", st.Uploaded, st.Ratio, before.TotalDownload, after.TotalDownload)
	if after.IsFinished || after.TotalDownload-before.TotalDownload > 512<<10 {
		t.Errorf("the leecher went on downloading after the goal: %d then %d bytes, finished %v", before.TotalDownload, after.TotalDownload, after.IsFinished)
	}
	if size := f.mi.Info.TotalLength; st.Uploaded < size/4 || st.Uploaded > size/4+(1<<20)+(512<<10) {
		t.Errorf("uploaded %d bytes of %d with a goal of 0.25", st.Uploaded, size)
	}
	if st.SeedState != SeedStateGoalReached || st.Peers != 0 {
		t.Errorf("after the goal: state %q, %d peers; want %q and none", st.SeedState, st.Peers, SeedStateGoalReached)
	}
}
