package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
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

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// httpBenchFrontend is one front-end under BenchmarkHTTPvsFUSE: how it
// reads 64 KiB at an offset of big.bin, the whole of it, and where a player
// finds the video.
type httpBenchFrontend struct {
	readAt func(off int64, p []byte) // fails b on error
	drain  func() int64              // reads big.bin through, returns the bytes
	// curl reads big.bin through with curl, a client other than ours
	// (HTTP only), and returns the bytes it counted.
	curl  func() int64
	video string // a path or a URL
}

// BenchmarkHTTPvsFUSE compares the HTTP front-end with the mount on one
// local swarm (4 libtorrent seeders, a 256 MiB file and a 60 s MP4 whose
// index is at its end, 1 MiB pieces), each iteration on fresh processes
// with empty caches, the two front-ends in alternating order: time to
// first byte (64 KiB) at 0, 50 and 90% of the file, ffprobe on the MP4,
// seek to its middle and play 5 s, cold sequential MB/s, and the cached
// re-read (through the mount: the page cache, as a program sees it; over
// HTTP also with curl, a client that is not ours). Each
// first-byte request over HTTP makes its own connection, as each on the
// mount opens the file. The floor-file and floor-http figures are ffprobe
// and the seek-and-play on the original video from disk and from a plain
// net/http file server: their difference is ffmpeg's own cost of HTTP,
// part of every HTTP figure.
//
//	go test -run '^$' -bench HTTPvsFUSE -benchtime 3x ./cmd/swarmfs
func BenchmarkHTTPvsFUSE(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent", "opentracker", "fuse", "ffprobe", "ffmpeg", "curl")
	root := b.TempDir()
	dir := filepath.Join(root, "m")
	const size = 256 << 20
	big := swarmtest.FileSpec{Path: "big.bin", Size: size}
	swarmtest.WriteFiles(b, dir, []swarmtest.FileSpec{big})
	makeVideo(b, filepath.Join(dir, "video.mp4"), 60, "1280x720", "3M")
	vidDur := probeDuration(b, filepath.Join(dir, "video.mp4"))
	ih := swarmtest.MakeTorrentInfo(b, dir, nil, 1<<20).InfoHash
	tr := startTracker(b, ih)
	ti := swarmtest.MakeTorrentInfo(b, dir, [][]string{{tr.HTTP}}, 1<<20)
	var seeders []*swarmtest.LT
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		s := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: ip})
		s.AddTorrent(ti.Path, root, true)
		seeders = append(seeders, s)
	}
	for _, s := range seeders {
		s.WaitSeeding(b, ti.InfoHash, time.Minute)
	}
	want := make([]byte, 64<<10)
	check := func(what string, off int64, got []byte) {
		big.ReadAt(want, off)
		if !bytes.Equal(got, want) {
			b.Fatalf("%s: wrong data at %d", what, off)
		}
	}
	drainBuf := make([]byte, 1<<20)
	drainFrom := func(r io.Reader) int64 {
		n, err := readThrough(r, drainBuf)
		if err != nil || n != size {
			b.Fatalf("read %d bytes, want %d: %v", n, size, err)
		}
		return n
	}

	// fuse mounts a fresh swarmfs; the returned stop unmounts it.
	fuse := func() (httpBenchFrontend, func()) {
		m := startMount(b, mountOpts{Sources: []string{ti.Path}, CacheSize: "1GiB"})
		p := filepath.Join(m.Dir, "m", "big.bin")
		waitPath(b, p, time.Minute)
		return httpBenchFrontend{
			readAt: func(off int64, buf []byte) {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
			},
			drain: func() int64 {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				return drainFrom(f)
			},
			video: filepath.Join(m.Dir, "m", "video.mp4"),
		}, func() { m.StopClean(b) }
	}
	// web runs a fresh swarmfs serve.
	web := func() (httpBenchFrontend, func()) {
		sp := startServe(b, []string{"--cache-size", "1GiB"}, ti.Path)
		u := sp.base + "/files/m/big.bin"
		get := func(rng string) *http.Response {
			req, _ := http.NewRequest("GET", u, nil)
			if rng != "" {
				req.Header.Set("Range", rng)
			}
			// A connection per request, as a player opening the URL
			// (or seeking, as ffmpeg does) makes one, and as the
			// mount's figures open the file each time.
			req.Close = true
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			if resp.StatusCode/100 != 2 {
				b.Fatalf("GET %s (%s): %s", u, rng, resp.Status)
			}
			return resp
		}
		return httpBenchFrontend{
			readAt: func(off int64, buf []byte) {
				resp := get(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(buf))-1))
				defer resp.Body.Close()
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					b.Fatal(err)
				}
			},
			drain: func() int64 {
				resp := get("")
				defer resp.Body.Close()
				return drainFrom(resp.Body)
			},
			curl: func() int64 {
				out, err := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", u).Output()
				if err != nil {
					b.Fatalf("curl %s: %v", u, err)
				}
				n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
				if err != nil || n != size {
					b.Fatalf("curl %s: %q bytes, want %d", u, out, size)
				}
				return n
			},
			video: sp.base + "/files/m/video.mp4",
		}, func() { sp.c.signal(os.Interrupt); sp.c.wait(time.Minute) }
	}

	// The floor: ffprobe and ffmpeg -ss on the original video, from the
	// disk and from a plain net/http file server on loopback. The
	// difference is what ffmpeg's own HTTP client costs (a connection and
	// a request per seek), which no server can take off the HTTP figures.
	floor := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer floor.Close()
	floorFigures := func(add func(fe, what string, v float64)) {
		for _, f := range []struct{ name, video string }{
			{"floor-file", filepath.Join(dir, "video.mp4")},
			{"floor-http", floor.URL + "/video.mp4"},
		} {
			t0 := time.Now()
			ffprobeOK(b, f.video, vidDur)
			add(f.name, "ffprobe-ms", float64(time.Since(t0).Microseconds())/1000)
			t0 = time.Now()
			seekPlay(b, f.video, vidDur)
			add(f.name, "seekplay-ms", float64(time.Since(t0).Microseconds())/1000)
		}
	}

	// Both front-ends get the same time after they are up to find their
	// peers: the mount takes longer to come up, and would otherwise start
	// with its peers connected more often.
	const settle = time.Second
	figures := map[string][]float64{}
	add := func(fe, what string, v float64) { figures[fe+"-"+what] = append(figures[fe+"-"+what], v) }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	mbps := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
	buf := make([]byte, 64<<10)
	b.ResetTimer()
	for i := range b.N {
		order := []string{"fuse", "http"}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			start := fuse
			if name == "http" {
				start = web
			}
			fe, stop := start()
			time.Sleep(settle)
			for _, pct := range []int64{0, 50, 90} {
				off := size * pct / 100 &^ 4095
				t0 := time.Now()
				fe.readAt(off, buf)
				add(name, fmt.Sprintf("ttfb%d-ms", pct), ms(time.Since(t0)))
				check(name, off, buf)
			}
			t0 := time.Now()
			ffprobeOK(b, fe.video, vidDur)
			add(name, "ffprobe-ms", ms(time.Since(t0)))
			t0 = time.Now()
			seekPlay(b, fe.video, vidDur)
			add(name, "seekplay-ms", ms(time.Since(t0)))
			t0 = time.Now()
			n := fe.drain()
			add(name, "cold-MB/s", mbps(n, time.Since(t0)))
			t0 = time.Now()
			n = fe.drain()
			add(name, "cached-MB/s", mbps(n, time.Since(t0)))
			if fe.curl != nil {
				t0 = time.Now()
				n = fe.curl()
				add(name, "cached-curl-MB/s", mbps(n, time.Since(t0)))
			}
			stop()
		}
		floorFigures(add)
	}
	b.StopTimer()
	for _, k := range slices.Sorted(maps.Keys(figures)) {
		v := figures[k]
		b.Logf("%s: %v", k, v) // in the order taken
		slices.Sort(v)
		b.ReportMetric(v[len(v)/2], k)
	}
}
