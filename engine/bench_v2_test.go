package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// BenchmarkColdReadV1VsV2 reads the same content through a v1 and a v2
// torrent of it, from one swarmfs seeder of both on loopback, alternating
// the two over several rounds in the same run (the machine's load hits
// both alike): the time to the first byte at 50% of the big file (a fresh
// leecher each time) and a cold sequential read of all of it. It reports
// the medians of each and the ratios v2/v1 (for speed, > 1 means v2 is
// faster). SWARMFS_BENCH_MB (default 64) and SWARMFS_BENCH_ROUNDS
// (default 3) change the size and the rounds. Both sides run with
// encryption off (SWARMFS_BENCH_ENCRYPTION: prefer, require, off), since
// RC4, which two swarmfs clients select under prefer, costs more than
// either hash and would hide the difference.
func BenchmarkColdReadV1VsV2(b *testing.B) {
	sizeMB, rounds := 64, 3
	if s := os.Getenv("SWARMFS_BENCH_MB"); s != "" {
		fmt.Sscan(s, &sizeMB)
	}
	if s := os.Getenv("SWARMFS_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	enc := mse.Off
	if s := os.Getenv("SWARMFS_BENCH_ENCRYPTION"); s != "" {
		var err error
		if enc, err = mse.ParsePolicy(s); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(b, root, []swarmtest.FileSpec{{Path: "big.bin", Size: int64(sizeMB) << 20}, {Path: "small.txt", Size: 1000}, {Path: "empty"}})
	mis := map[string]*metainfo.MetaInfo{}
	for _, f := range []metainfo.Format{metainfo.FormatV1, metainfo.FormatV2} {
		mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 256 << 10, NoDate: true, Format: f})
		if err != nil {
			b.Fatal(err)
		}
		mis[f.String()] = mi
	}
	quiet := func(string, ...any) {}
	seed, err := New(Config{ListenAddr: "127.0.0.2:0", Storage: storage.File{Dir: dir}, NoTrackers: true, Encryption: enc, Logf: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer seed.Close()
	for _, mi := range mis {
		tor, err := seed.AddTorrent(mi, TorrentOptions{DownloadAll: true})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-tor.Complete():
		case <-time.After(time.Minute):
			b.Fatal("the seeder does not have its data")
		}
	}
	// leech opens big.bin of mi in a fresh client and calls read with it.
	leech := func(mi *metainfo.MetaInfo, read func(r *Reader) error) {
		c, err := New(Config{ListenAddr: "127.0.0.3:0", Storage: &storage.Memory{}, NoTrackers: true, Encryption: enc, Logf: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		tor, err := c.AddTorrent(mi, TorrentOptions{Peers: peersOf(seed)})
		if err != nil {
			b.Fatal(err)
		}
		r, err := tor.NewReader(0, false) // big.bin, the first file
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		if err := read(r); err != nil {
			b.Fatal(err)
		}
	}
	ttfb := map[string][]time.Duration{}
	speed := map[string][]float64{}
	// A read of each, not counted, so that the seeder's page cache is warm
	// for both: the first read from the seeder was 3 to 8 times slower
	// than the next, which made whichever format went first look slow.
	for _, f := range []string{"v1", "v2"} {
		leech(mis[f], func(r *Reader) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			_, err := io.Copy(io.Discard, io.NewSectionReader(readerAt{ctx, r}, 0, r.Size()))
			return err
		})
	}
	for b.Loop() {
		for round := 0; round < rounds; round++ {
			order := []string{"v1", "v2"}
			if round%2 == 1 {
				order = []string{"v2", "v1"}
			}
			for _, f := range order {
				mi := mis[f]
				leech(mi, func(r *Reader) error {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					start := time.Now()
					_, err := r.ReadAt(ctx, make([]byte, 1), r.Size()/2)
					ttfb[f] = append(ttfb[f], time.Since(start))
					return err
				})
				leech(mi, func(r *Reader) error {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					defer cancel()
					buf := make([]byte, 1<<20)
					start := time.Now()
					var off int64
					for off < r.Size() {
						n, err := r.ReadAt(ctx, buf, off)
						off += int64(n)
						if err == io.EOF {
							break
						}
						if err != nil {
							return err
						}
					}
					speed[f] = append(speed[f], float64(off)/time.Since(start).Seconds()/1e6)
					return nil
				})
			}
		}
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	medD := func(xs []time.Duration) time.Duration { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	b.ReportMetric(med(speed["v1"]), "v1-MB/s")
	b.ReportMetric(med(speed["v2"]), "v2-MB/s")
	b.ReportMetric(med(speed["v2"])/med(speed["v1"]), "v2/v1-speed")
	b.ReportMetric(float64(medD(ttfb["v1"]).Microseconds())/1000, "v1-ttfb50-ms")
	b.ReportMetric(float64(medD(ttfb["v2"]).Microseconds())/1000, "v2-ttfb50-ms")
	b.Logf("cold read MB/s v1 %.0f, v2 %.0f; first byte at 50%%: v1 %v, v2 %v (all rounds: %v %v %v %v)",
		med(speed["v1"]), med(speed["v2"]), medD(ttfb["v1"]), medD(ttfb["v2"]), speed["v1"], speed["v2"], ttfb["v1"], ttfb["v2"])
}

// readerAt is r as an io.ReaderAt under ctx.
type readerAt struct {
	ctx context.Context
	r   *Reader
}

func (a readerAt) ReadAt(p []byte, off int64) (int, error) { return a.r.ReadAt(a.ctx, p, off) }
