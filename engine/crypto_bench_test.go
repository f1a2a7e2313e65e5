package engine

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// BenchmarkCryptoDownload is the cost of RC4 (issue 10's closing note): a
// cold download of a 256 MiB torrent to disk from a libtorrent seeder that
// requires encryption, against one in its default setting (our MSE offer
// of both methods, for which libtorrent selects plaintext), in the same
// run. It reports each one's MB/s and the CPU seconds (user + system) of
// this process, which is the swarmfs client alone: libtorrent runs in its
// own. Run it with -benchtime 1x.
//
// A libtorrent leecher then downloads from the same seeder in swarmfs's
// place, in the same setting (requiring RC4 where the seeder does), so the
// figure for swarmfs can be set against the client people compare it
// with: on a 2-core machine the seeder's own encryption competes with the
// leecher for the CPU, and both leechers pay for it.
func BenchmarkCryptoDownload(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent")
	dir := b.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(b, root, []swarmtest.FileSpec{{Path: "big.bin", Size: 256 << 20}})
	torrent, _ := swarmtest.MakeTorrent(b, root, nil, 1<<20)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		b.Fatal(err)
	}
	size := float64(mi.Info.TotalLength)
	cases := []struct {
		name string
		enc  swarmtest.Encryption
		ip   string
	}{
		{"plain", swarmtest.EncryptionDefault, "127.0.7.1"},
		{"rc4", swarmtest.EncryptionRequired, "127.0.7.3"},
	}
	// SWARMFS_BENCH_PIN=1 pins this process to CPU 0 and each libtorrent
	// to CPU 1, so the leecher's cost is apart from the seeder's.
	pin := os.Getenv("SWARMFS_BENCH_PIN") == "1"
	if pin {
		pinCPU(b, os.Getpid(), 0)
	}
	var secs, cpu, ltSecs [2]float64
	for b.Loop() {
		for i, tc := range cases {
			lt := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: tc.ip, Encryption: tc.enc, SeedMode: true})
			if pin {
				pinCPU(b, lt.Pid(), 1)
			}
			lt.AddTorrent(torrent, dir, true)
			lt.WaitSeeding(b, mi.InfoHash, time.Minute)
			ap := netip.MustParseAddrPort(lt.Addr())
			c, err := New(Config{ListenAddr: "127.0.7.2:0", Storage: storage.File{Dir: b.TempDir()}})
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuSeconds()
			start := time.Now()
			tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{ap}})
			if err != nil {
				b.Fatal(err)
			}
			select {
			case <-tor.Complete():
			case <-time.After(5 * time.Minute):
				b.Fatalf("%s: not complete after 5 min", tc.name)
			}
			secs[i] += time.Since(start).Seconds()
			cpu[i] += cpuSeconds() - cpu0
			if enc := tor.Stats().EncryptedPeers; (enc > 0) != (tc.enc == swarmtest.EncryptionRequired) {
				b.Errorf("%s: %d encrypted peers", tc.name, enc)
			}
			c.Close()

			leecher := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: "127.0.7.4", Encryption: tc.enc})
			if pin {
				pinCPU(b, leecher.Pid(), 0)
			}
			leecher.AddTorrent(torrent, b.TempDir(), false)
			leecher.ConnectPeer(mi.InfoHash, lt.Addr())
			ltSecs[i] += leecher.WaitComplete(b, mi.InfoHash, 5*time.Minute).Seconds()
			leecher.Remove(mi.InfoHash)
		}
	}
	n := float64(b.N)
	for i, tc := range cases {
		b.ReportMetric(size*n/secs[i]/1e6, tc.name+"_MB/s")
		b.ReportMetric(cpu[i]/n, tc.name+"_cpu_s")
		b.ReportMetric(size*n/ltSecs[i]/1e6, "lt_"+tc.name+"_MB/s")
	}
	// The share of the plain rate that RC4 costs each leecher.
	b.ReportMetric(100*(1-secs[0]/secs[1]), "rc4_cost_%")
	b.ReportMetric(100*(1-ltSecs[0]/ltSecs[1]), "lt_rc4_cost_%")
}

// pinCPU pins every thread of process pid to one CPU (taskset -a).
func pinCPU(tb testing.TB, pid, cpu int) {
	tb.Helper()
	if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).CombinedOutput(); err != nil {
		tb.Fatalf("taskset: %v: %s", err, out)
	}
}

// cpuSeconds is this process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
