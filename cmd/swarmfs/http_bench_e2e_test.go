package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// BenchmarkHTTPvsFUSE compares the HTTP front-end with the mount on one
// local swarm (4 libtorrent seeders, a 256 MiB file, 1 MiB pieces), each
// iteration on fresh processes with empty caches: time to first byte at
// 50% of the file, cold sequential MB/s, and over HTTP the cached re-read.
//
//	go test -run '^$' -bench HTTPvsFUSE -benchtime 3x ./cmd/swarmfs
func BenchmarkHTTPvsFUSE(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent", "opentracker", "fuse")
	root := b.TempDir()
	dir := filepath.Join(root, "m")
	const size = 256 << 20
	swarmtest.WriteFiles(b, dir, []swarmtest.FileSpec{{Path: "big.bin", Size: size}})
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
	drain := func(r io.Reader) time.Duration {
		start := time.Now()
		n, err := io.CopyBuffer(io.Discard, r, make([]byte, 1<<20))
		if err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		return time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return size / d.Seconds() / 1e6 }
	// Both front-ends get the same time after they are up to find their
	// peers: the mount takes longer to come up, and would otherwise start
	// with its peers connected more often.
	const settle = time.Second
	var fuseTTFB, httpTTFB, fuseCold, httpCold, httpCached []float64
	b.ResetTimer()
	for range b.N {
		m := startMount(b, mountOpts{Sources: []string{ti.Path}, CacheSize: "1GiB"})
		p := filepath.Join(m.Dir, "m", "big.bin")
		waitPath(b, p, time.Minute)
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(settle)
		start := time.Now()
		if _, err := f.ReadAt(make([]byte, 64<<10), size/2); err != nil {
			b.Fatal(err)
		}
		fuseTTFB = append(fuseTTFB, float64(time.Since(start).Milliseconds()))
		fuseCold = append(fuseCold, mbps(drain(f)))
		f.Close()
		m.StopClean(b)

		sp := startServe(b, []string{"--cache-size", "1GiB"}, ti.Path)
		u := sp.base + "/files/m/big.bin"
		time.Sleep(settle)
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", size/2, size/2+64<<10-1))
		start = time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		httpTTFB = append(httpTTFB, float64(time.Since(start).Milliseconds()))
		for _, into := range []*[]float64{&httpCold, &httpCached} {
			resp, err := http.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			*into = append(*into, mbps(drain(resp.Body)))
			resp.Body.Close()
		}
		sp.c.signal(os.Interrupt)
		sp.c.wait(time.Minute)
	}
	b.StopTimer()
	med := func(v []float64) float64 {
		slices.Sort(v)
		return v[len(v)/2]
	}
	b.ReportMetric(med(fuseTTFB), "fuse-ttfb50-ms")
	b.ReportMetric(med(httpTTFB), "http-ttfb50-ms")
	b.ReportMetric(med(fuseCold), "fuse-cold-MB/s")
	b.ReportMetric(med(httpCold), "http-cold-MB/s")
	b.ReportMetric(med(httpCached), "http-cached-MB/s")
}
