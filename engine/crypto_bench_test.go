package engine

import (
	"net/netip"
	"path/filepath"
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
	var secs, cpu [2]float64
	for b.Loop() {
		for i, tc := range cases {
			lt := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: tc.ip, Encryption: tc.enc, SeedMode: true})
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
		}
	}
	n := float64(b.N)
	for i, tc := range cases {
		b.ReportMetric(size*n/secs[i]/1e6, tc.name+"_MB/s")
		b.ReportMetric(cpu[i]/n, tc.name+"_cpu_s")
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
