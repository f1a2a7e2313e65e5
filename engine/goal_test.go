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

// TestStatsCompleteAtOnce: the moment a download completes, and the moment
// a seed is added, Stats says so: complete and seeding, not "downloading"
// beside 100% until the next stats tick (a script polling `swarmfs status
// --json` for the end of a download saw both).
func TestStatsCompleteAtOnce(t *testing.T) {
	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 4 << 20}})
	sc, stor := seeder(t, f, Config{ListenAddr: "127.0.0.1:0", NoTrackers: true})
	if st := stor.Stats(); !st.Complete || st.SeedState != SeedStateSeeding || st.PiecesHave != f.mi.Info.NumPieces() {
		t.Errorf("seed right after AddTorrent: complete %v, state %q, %d of %d pieces", st.Complete, st.SeedState, st.PiecesHave, f.mi.Info.NumPieces())
	}
	for i := range 3 {
		_, tor, _ := leecher(t, f, Config{ListenAddr: "127.0.0.1:0", NoTrackers: true}, peersOf(sc)...)
		waitComplete(t, tor, 30*time.Second)
		if st := tor.Stats(); !st.Complete || st.SeedState != SeedStateSeeding || st.PiecesHave != st.Pieces {
			t.Errorf("download %d, right after it completed: complete %v, state %q, %d of %d pieces", i, st.Complete, st.SeedState, st.PiecesHave, st.Pieces)
		}
	}
}
