package engine

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// BenchmarkColdDownloadUTPvsTCP is issue 11's loopback figure: `swarmfs
// get` of one torrent from a local libtorrent seeder over uTP only
// (--no-tcp, seeder uTP-only) and over TCP only (--no-utp), alternating
// in the same run. It reports each transport's median speed (swarmfs's
// own "completed in"), the CPU seconds the swarmfs process spent
// (user+system, median) and the uTP/TCP speed ratio (goal: at least
// 0.6), beside a uTP-only libtorrent leecher's speed from the same
// seeder (libtorrent's uTP sender is the ceiling on loopback). SWARMFS_BENCH_MB and SWARMFS_BENCH_ROUNDS change the size
// (default 256) and the rounds (3).
func BenchmarkColdDownloadUTPvsTCP(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent")
	sizeMB, rounds := 256, 3
	if s := os.Getenv("SWARMFS_BENCH_MB"); s != "" {
		fmt.Sscan(s, &sizeMB)
	}
	if s := os.Getenv("SWARMFS_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	bin := swarmfsBinary(b)
	base := b.TempDir()
	root := filepath.Join(base, "bench")
	swarmtest.WriteFiles(b, root, []swarmtest.FileSpec{{Path: "payload.bin", Size: int64(sizeMB) << 20}})
	path, ih := swarmtest.MakeTorrent(b, root, nil, 1<<20)
	tcpSeed := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: "127.0.0.2", SeedMode: true})
	utpSeed := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: "127.0.0.4", SeedMode: true, UTPOnly: true})
	for _, s := range []*swarmtest.LT{tcpSeed, utpSeed} {
		s.AddTorrent(path, base, true)
		s.WaitSeeding(b, ih, 5*time.Minute)
	}
	get := func(seed *swarmtest.LT, flag string) (time.Duration, time.Duration) {
		syscall.Sync()
		got := b.TempDir()
		cmd := exec.Command(bin, "get", "--listen", "127.0.0.3:0", "--no-dht", "--no-lsd", "--no-trackers", flag,
			"--peer", seed.Addr(), path, got)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("swarmfs get %s: %v\n%s", flag, err, out.String())
		}
		m := completedRE.FindStringSubmatch(out.String())
		if m == nil {
			b.Fatalf("swarmfs get %s did not complete:\n%s", flag, out.String())
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(got)
		return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	for b.Loop() {
		var utpT, tcpT, utpCPU, tcpCPU, ltT []time.Duration
		for r := range rounds {
			d, cpu := get(utpSeed, "--no-tcp")
			utpT, utpCPU = append(utpT, d), append(utpCPU, cpu)
			d, cpu = get(tcpSeed, "--no-utp")
			tcpT, tcpCPU = append(tcpT, d), append(tcpCPU, cpu)
			// libtorrent's own uTP from the same seeder: the ceiling its
			// sender sets.
			syscall.Sync()
			lt := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: fmt.Sprintf("127.0.0.%d", 10+r), UTPOnly: true})
			lt.AddTorrent(path, b.TempDir(), false)
			lt.ConnectPeer(ih, utpSeed.Addr())
			ltT = append(ltT, lt.WaitComplete(b, ih, 10*time.Minute))
			b.Logf("round %d: uTP %v (CPU %v), TCP %v (CPU %v), libtorrent over uTP %v", r+1, utpT[r], utpCPU[r], tcpT[r], tcpCPU[r], ltT[r])
		}
		mb := float64(int64(sizeMB)<<20) / 1e6
		b.ReportMetric(mb/median(utpT).Seconds(), "utp-MB/s")
		b.ReportMetric(mb/median(tcpT).Seconds(), "tcp-MB/s")
		b.ReportMetric(mb/median(ltT).Seconds(), "libtorrent-utp-MB/s")
		b.ReportMetric(median(utpCPU).Seconds(), "utp-cpu-s")
		b.ReportMetric(median(tcpCPU).Seconds(), "tcp-cpu-s")
		b.ReportMetric(median(tcpT).Seconds()/median(utpT).Seconds(), "utp/tcp-speed")
	}
}
