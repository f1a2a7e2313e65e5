package engine

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// BenchmarkSHA1 is the hashing ceiling for cold downloads on this machine.
func BenchmarkSHA1(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		sha1.Sum(buf)
	}
}

var completedRE = regexp.MustCompile(`completed .* in (\S+) \(`)

// swarmfsBinary returns $SWARMFS_BIN or builds the command into a temp dir.
func swarmfsBinary(b *testing.B) string {
	if p := os.Getenv("SWARMFS_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			b.Fatal(err)
		}
		return abs
	}
	out := filepath.Join(b.TempDir(), "swarmfs")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-o", out, "../cmd/swarmfs")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build swarmfs: %v\n%s", err, msg)
	}
	return out
}

// BenchmarkColdDownloadVsLibtorrent downloads a 1 GiB torrent from one local
// libtorrent seeder, unlimited, with the swarmfs command and with a
// libtorrent leecher, alternating over several rounds in the same run. It
// reports the best and median speeds of both, their time ratios
// (swarmfs/libtorrent: <= 1 means swarmfs is at least as fast) and the
// swarmfs process's peak RSS. SWARMFS_BENCH_MB and SWARMFS_BENCH_ROUNDS
// change the size and the rounds.
func BenchmarkColdDownloadVsLibtorrent(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent")
	sizeMB, rounds := 1024, 3
	if s := os.Getenv("SWARMFS_BENCH_MB"); s != "" {
		fmt.Sscan(s, &sizeMB)
	}
	if s := os.Getenv("SWARMFS_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	bin := swarmfsBinary(b)
	dir := b.TempDir()
	root := filepath.Join(dir, "bench")
	swarmtest.WriteFiles(b, root, []swarmtest.FileSpec{{Path: "payload.bin", Size: int64(sizeMB) << 20}})
	path, ih := swarmtest.MakeTorrent(b, root, nil, 1<<20)
	seed := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: "127.0.0.2"})
	seed.AddTorrent(path, dir, true)
	seed.WaitSeeding(b, ih, 5*time.Minute)

	for b.Loop() {
		var sfsTimes, ltTimes []time.Duration
		var peakRSS int64
		// Alternate the two clients and keep every download until the end:
		// deleting a GiB between runs makes the next writes wait on the
		// disk's discards, which is noise, not either client's speed. Each
		// side starts with no dirty pages left by the other.
		for r := 0; r < rounds; r++ {
			syscall.Sync()
			got := b.TempDir()
			cmd := exec.Command(bin, "get", "--listen", "127.0.0.3:0", "--no-trackers", "--peer", seed.Addr(), path, got)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				b.Fatalf("swarmfs get: %v\n%s", err, out.String())
			}
			// Compare like with like: libtorrent's figure runs from adding
			// the torrent to finishing, so take swarmfs's own "completed in"
			// figure, which excludes process start and shutdown.
			m := completedRE.FindStringSubmatch(out.String())
			if m == nil {
				b.Fatalf("swarmfs get did not complete:\n%s", out.String())
			}
			sfs, err := time.ParseDuration(m[1])
			if err != nil {
				b.Fatal(err)
			}
			sfsTimes = append(sfsTimes, sfs)
			peakRSS = max(peakRSS, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // KiB

			syscall.Sync()
			lt := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: fmt.Sprintf("127.0.0.%d", 10+r)})
			lt.AddTorrent(path, b.TempDir(), false)
			lt.ConnectPeer(ih, seed.Addr())
			ltTimes = append(ltTimes, lt.WaitComplete(b, ih, 10*time.Minute))
			b.Logf("round %d: swarmfs %v, libtorrent %v", r+1, sfs, ltTimes[r])
		}
		mb := float64(int64(sizeMB)<<20) / 1e6
		sfsBest, ltBest := slices.Min(sfsTimes), slices.Min(ltTimes)
		sfsMed, ltMed := median(sfsTimes), median(ltTimes)
		b.ReportMetric(mb/sfsBest.Seconds(), "swarmfs-best-MB/s")
		b.ReportMetric(mb/ltBest.Seconds(), "libtorrent-best-MB/s")
		b.ReportMetric(sfsBest.Seconds()/ltBest.Seconds(), "best-time-ratio")
		b.ReportMetric(mb/sfsMed.Seconds(), "swarmfs-median-MB/s")
		b.ReportMetric(mb/ltMed.Seconds(), "libtorrent-median-MB/s")
		b.ReportMetric(sfsMed.Seconds()/ltMed.Seconds(), "median-time-ratio")
		b.ReportMetric(float64(peakRSS)/1024, "swarmfs-peak-RSS-MiB")
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
