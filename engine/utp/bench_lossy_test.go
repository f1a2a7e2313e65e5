package utp

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
	"github.com/swarmfs/swarmfs/engine/utp/utptest"
)

// BenchmarkLossyVsLibtorrent downloads one torrent from a uTP-only
// libtorrent seeder over the emulated path of issue 11's figures (20 ms
// each way, 1% loss each way, utptest.Relay), alternately with this
// package (BEP 3 requests, 64 outstanding) and with a uTP-only
// libtorrent leecher on a relay of the same links, and reports the
// median speed of each and their ratio (ours/libtorrent's: the goal is
// at least 0.9). SWARMFS_BENCH_MB and SWARMFS_BENCH_ROUNDS change the
// size (default 8) and the rounds (3).
func BenchmarkLossyVsLibtorrent(b *testing.B) {
	sizeMB, rounds := 8, 3
	if s := os.Getenv("SWARMFS_BENCH_MB"); s != "" {
		fmt.Sscan(s, &sizeMB)
	}
	if s := os.Getenv("SWARMFS_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	lt, f, ti := ltSeeder(b, int64(sizeMB)<<20, 256<<10)
	link := func(seed uint64) utptest.Link {
		return utptest.Link{Delay: 20 * time.Millisecond, Loss: 0.01, Seed: seed}
	}
	for b.Loop() {
		var ours, theirs []float64 // MB/s
		for round := range rounds {
			seed := uint64(10 * (round + 1))
			// Ours.
			s := testSocket(b, Config{})
			r := relay(b, lt.Addr(), link(seed), link(seed+1))
			start := time.Now()
			c := dialLT(b, s, r.Addr(), ti.InfoHash)
			n := download(b, c, f, ti)
			ours = append(ours, float64(n)/1e6/time.Since(start).Seconds())
			c.Close()
			r.Close()
			s.Close()

			// libtorrent's.
			r2 := relay(b, lt.Addr(), link(seed), link(seed+1))
			leech := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: "127.0.0.3", UTPOnly: true, NoTrackers: true})
			leech.AddTorrent(ti.Path, b.TempDir(), false)
			leech.ConnectPeer(ti.InfoHash, r2.Addr())
			took := leech.WaitComplete(b, ti.InfoHash, 5*time.Minute)
			theirs = append(theirs, float64(ti.TotalSize)/1e6/took.Seconds())
			r2.Close()
			b.Logf("round %d: ours %.2f MB/s, libtorrent's %.2f MB/s", round+1, ours[round], theirs[round])
		}
		slices.Sort(ours)
		slices.Sort(theirs)
		mo, mt := ours[len(ours)/2], theirs[len(theirs)/2]
		b.ReportMetric(mo, "ours-MB/s")
		b.ReportMetric(mt, "libtorrent-MB/s")
		b.ReportMetric(mo/mt, "ratio")
	}
}
