package main

// BenchmarkWebSeed: the web seed figures of issue 12, in one run: a cold
// sequential read through a mount of a torrent whose only source is a web
// seed (an HTTP server in this process), against curl fetching the same
// file from the same server, and the time to the first byte at 50% of the
// file right after the mount. Uncapped, with the server capped at 20 MB/s,
// and capped behind 30 ms of latency each way (a delaying relay, as
// BenchmarkE2E's "slowlat", where a connection's handshake costs a round
// trip too), where the first byte is also timed on a second
// mount one second after its listing, as when a player is started by hand.
//
//	go test -run '^$' -bench WebSeed ./cmd/swarmfs
//
// SWARMFS_BENCH_WS_MB sets the file's size in MiB (default 128).
//
// BenchmarkWebSeedSwarm: the other web seed figure of issue 12, ffprobe
// and seek-and-play of an MP4 indexed at its end, on a fresh mount each,
// from a slow swarm alone (four libtorrent seeders capped at 2 MB/s each,
// as BenchmarkE2E's "slow") against the same swarm plus a web seed (an HTTP
// server in this process capped at 20 MB/s), alternating, medians of 3;
// and the same on the original file, for scale.
//
//	go test -run '^$' -bench WebSeedSwarm -benchtime 1x ./cmd/swarmfs

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// cappedWriter writes no faster than its limiter allows.
type cappedWriter struct {
	http.ResponseWriter
	lim *rate.Limiter
}

func (w cappedWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), w.lim.Burst())
		if err := w.lim.WaitN(context.Background(), k); err != nil {
			return n, err
		}
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func BenchmarkWebSeed(b *testing.B) {
	swarmtest.RequireTools(b, "fuse")
	if _, err := exec.LookPath("curl"); err != nil {
		b.Skip("no curl")
	}
	size := int64(128)
	if v, err := strconv.Atoi(os.Getenv("SWARMFS_BENCH_WS_MB")); err == nil && v > 0 {
		size = int64(v)
	}
	size <<= 20
	dir := b.TempDir()
	swarmtest.WriteFiles(b, dir, []swarmtest.FileSpec{{Path: "ws-bench.bin", Size: size}})
	src := filepath.Join(dir, "ws-bench.bin")
	for _, tc := range []struct {
		name  string
		cap   float64       // bytes/s, 0 = none
		delay time.Duration // each way, 0 = none
	}{{"uncapped", 0, 0}, {"capped-20MBps", 20e6, 0}, {"capped-20MBps-30ms", 20e6, 30 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			files := http.FileServer(http.Dir(dir))
			// One cap for the whole server, however many connections.
			lim := rate.NewLimiter(rate.Limit(tc.cap), 256<<10)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.cap > 0 {
					w = cappedWriter{w, lim}
				}
				files.ServeHTTP(w, r)
			}))
			defer srv.Close()
			base := srv.URL
			if tc.delay > 0 {
				relay := swarmtest.StartDelayRelay(b, "127.0.0.1:0", srv.Listener.Addr().String(), tc.delay)
				relay.ChargeConnect() // a new connection costs a round trip
				base = "http://" + relay.Addr()
			}
			mi, err := metainfo.Create(src, metainfo.CreateOptions{PieceLength: 1 << 20, NoDate: true, WebSeeds: []string{base + "/"}})
			if err != nil {
				b.Fatal(err)
			}
			raw, err := mi.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			tor := filepath.Join(b.TempDir(), "ws-bench.torrent")
			if err := os.WriteFile(tor, raw, 0o644); err != nil {
				b.Fatal(err)
			}
			var curlRate, ourRate, curlFirst float64
			// First bytes: a median, as one slow mount in a few moves a mean.
			firsts, laters := samples{}, samples{}
			for i := 0; i < b.N; i++ {
				// curl: the same file, the same server, one stream.
				out, err := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total} %{time_starttransfer}", base+"/ws-bench.bin").Output()
				if err != nil {
					b.Fatalf("curl: %v", err)
				}
				var n, total, first float64
				if _, err := fmt.Sscan(string(out), &n, &total, &first); err != nil || int64(n) != size {
					b.Fatalf("curl: %q: %v", out, err)
				}
				curlRate += n / total / 1e6
				curlFirst += first * 1000

				// First byte at 50%, on a fresh mount (its piece is
				// then cached: one piece in 128 of the cold read).
				m, f, ms := mountFirstByte(b, tor, size/2, 0)
				firsts.add("first", tc.name, "swarmfs", ms)
				start := time.Now()
				got, err := readThrough(f, make([]byte, 1<<20))
				el := time.Since(start)
				f.Close()
				if err != nil || got != size {
					b.Fatalf("read %d of %d: %v", got, size, err)
				}
				ourRate += float64(size) / el.Seconds() / 1e6
				out2, _ := swarmfsCmd(b, "status", "--data-dir", m.DataDir)
				b.Logf("status after the read:\n%s", strings.TrimSpace(out2))
				m.StopClean(b)
				if tc.delay > 0 {
					m, f, ms := mountFirstByte(b, tor, size/2, time.Second)
					laters.add("first", tc.name, "swarmfs", ms)
					f.Close()
					m.StopClean(b)
				}
			}
			k := float64(b.N)
			if tc.delay > 0 {
				m, _ := laters.median("first", tc.name, "swarmfs")
				b.ReportMetric(m, "ms-first-byte-50%-1s-after")
			}
			b.ReportMetric(ourRate/k, "MB/s-swarmfs")
			b.ReportMetric(curlRate/k, "MB/s-curl")
			b.ReportMetric(100*ourRate/curlRate, "%-of-curl")
			m, _ := firsts.median("first", tc.name, "swarmfs")
			b.Logf("first bytes at 50%%, ms: %.2f", firsts[sampleKey("first", tc.name, "swarmfs")])
			b.ReportMetric(m, "ms-first-byte-50%-median")
			b.ReportMetric(curlFirst/k, "ms-curl-first-byte")
		})
	}
}

// mountFirstByte mounts tor afresh, waits wait after its listing, opens
// its file and returns the milliseconds a read of one byte at off takes;
// the caller closes the file and stops the mount.
func mountFirstByte(b *testing.B, tor string, off int64, wait time.Duration) (*mountProc, *os.File, float64) {
	m := startMount(b, mountOpts{IP: "127.0.0.83", Sources: []string{tor}})
	file := filepath.Join(m.Dir, "ws-bench.bin", "ws-bench.bin")
	waitPath(b, file, time.Minute)
	time.Sleep(wait)
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := f.ReadAt(make([]byte, 1), off); err != nil {
		b.Fatal(err)
	}
	return m, f, float64(time.Since(start).Microseconds()) / 1000
}

func BenchmarkWebSeedSwarm(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent", "opentracker", "fuse", "ffprobe", "ffmpeg")
	swarmfsBin(b) // built before anything is timed
	dir := b.TempDir()
	video := filepath.Join(dir, "wsv", "video.mp4")
	makeVideo(b, video, benchVideoSecs, "1280x720", "3M")
	vidDur := probeDuration(b, video)
	ih := swarmtest.MakeTorrentInfo(b, filepath.Join(dir, "wsv"), nil, benchPiece).InfoHash
	tr := startTracker(b, ih)
	swarm := swarmtest.MakeTorrentInfo(b, filepath.Join(dir, "wsv"), [][]string{{tr.HTTP}}, benchPiece)
	for i := range benchSeeders {
		s := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: fmt.Sprintf("127.0.0.%d", 91+i), SeedMode: true})
		s.AddTorrent(swarm.Path, dir, true)
		s.WaitSeeding(b, swarm.InfoHash, 2*time.Minute)
		s.SetRates(benchSlowRate, 0)
	}
	// The web seed: the same folder over HTTP, capped at 20 MB/s for all
	// its connections, named in a copy of the .torrent (url-list is
	// outside the info: the same info-hash, the same swarm).
	files := http.FileServer(http.Dir(dir))
	lim := rate.NewLimiter(rate.Limit(20e6), 256<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files.ServeHTTP(cappedWriter{w, lim}, r)
	}))
	defer srv.Close()
	mi, err := metainfo.Load(swarm.Path)
	if err != nil {
		b.Fatal(err)
	}
	mi.URLList = []string{srv.URL + "/"}
	raw, err := mi.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	withSeed := filepath.Join(b.TempDir(), "wsv-webseed.torrent")
	if err := os.WriteFile(withSeed, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	if got, err := metainfo.Load(withSeed); err != nil || got.InfoHash != swarm.InfoHash {
		b.Fatalf("the web seed's torrent: %v", err)
	}
	variants := []struct{ name, torrent string }{{"swarm", swarm.Path}, {"webseed+swarm", withSeed}}
	res := samples{}
	for b.Loop() {
		for rep := range 3 {
			order := slices.Clone(variants)
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			// The original file, for scale (and the machine's load).
			res.add("ffprobe", "local", "local", timeIt(b, func() { ffprobeOK(b, video, vidDur) }).Seconds())
			res.add("seekplay", "local", "local", timeIt(b, func() { seekPlay(b, video, vidDur) }).Seconds())
			for _, v := range order {
				for _, fig := range []string{"ffprobe", "seekplay"} {
					// One fresh mount (cold cache) per timed figure.
					m := startMount(b, mountOpts{IP: "127.0.0.90", Sources: []string{v.torrent}})
					file := filepath.Join(m.Dir, "wsv", "video.mp4")
					waitPath(b, file, time.Minute)
					time.Sleep(benchSettle) // the swarm's peers connect, as in BenchmarkE2E
					var el time.Duration
					if fig == "ffprobe" {
						el = timeIt(b, func() { ffprobeOK(b, file, vidDur) })
					} else {
						el = timeIt(b, func() { seekPlay(b, file, vidDur) })
					}
					res.add(fig, v.name, "swarmfs", el.Seconds())
					m.StopClean(b)
				}
			}
		}
	}
	for _, fig := range []string{"ffprobe", "seekplay"} {
		alone, _ := res.median(fig, "swarm", "swarmfs")
		both, _ := res.median(fig, "webseed+swarm", "swarmfs")
		local, _ := res.median(fig, "local", "local")
		b.ReportMetric(alone, "s-"+fig+"-swarm")
		b.ReportMetric(both, "s-"+fig+"-webseed+swarm")
		b.ReportMetric(local, "s-"+fig+"-local")
		b.Logf("%s: swarm alone %.3f s, web seed + swarm %.3f s, the original file %.3f s (samples %v / %v)", fig, alone, both, local,
			res[sampleKey(fig, "swarm", "swarmfs")], res[sampleKey(fig, "webseed+swarm", "swarmfs")])
	}
}
