package engine

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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
// libtorrent seeder, unlimited, with the swarmfs command and then with a
// libtorrent leecher, in the same run. It reports both times, their ratio
// (swarmfs/libtorrent: <= 1 means swarmfs is at least as fast) and the
// swarmfs process's peak RSS. SWARMFS_BENCH_MB changes the size.
func BenchmarkColdDownloadVsLibtorrent(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent")
	sizeMB := 1024
	if s := os.Getenv("SWARMFS_BENCH_MB"); s != "" {
		fmt.Sscan(s, &sizeMB)
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
		// swarmfs
		got := b.TempDir()
		cmd := exec.Command(bin, "get", "--listen", "127.0.0.3:0", "--no-trackers", "--peer", seed.Addr(), path, got)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("swarmfs get: %v\n%s", err, out.String())
		}
		sfs := time.Since(start)
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
		if !strings.Contains(out.String(), "completed") {
			b.Fatalf("swarmfs get did not complete:\n%s", out.String())
		}
		os.RemoveAll(got)

		// libtorrent
		lt := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: "127.0.0.4"})
		ltDir := b.TempDir()
		lt.AddTorrent(path, ltDir, false)
		lt.ConnectPeer(ih, seed.Addr())
		ltTime := lt.WaitComplete(b, ih, 10*time.Minute)
		os.RemoveAll(ltDir)

		mb := float64(int64(sizeMB)<<20) / 1e6
		b.ReportMetric(sfs.Seconds(), "swarmfs-s")
		b.ReportMetric(mb/sfs.Seconds(), "swarmfs-MB/s")
		b.ReportMetric(ltTime.Seconds(), "libtorrent-s")
		b.ReportMetric(mb/ltTime.Seconds(), "libtorrent-MB/s")
		b.ReportMetric(sfs.Seconds()/ltTime.Seconds(), "time-ratio")
		b.ReportMetric(float64(rss)/1024, "swarmfs-peak-RSS-MiB")
	}
}
