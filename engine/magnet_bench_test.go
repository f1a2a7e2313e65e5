package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// BenchmarkMagnetToFirstByte measures, for a fresh client given only a
// magnet, the time from AddMagnet to the metadata (a listing would show the
// files) and to the first byte of a file, against a libtorrent seeder on
// loopback:
//
//   - dht: the seeder announces on a loopback DHT of three swarmfs nodes;
//     the magnet has no tracker; the client bootstraps its own DHT node
//     from one of them (a cold start: an empty routing table).
//   - dht+tracker: the same, and the magnet names an opentracker the
//     seeder announces to.
//   - tracker: the client has no DHT; the tracker alone.
//
// Each iteration is one new client. Metrics are medians over iterations;
// run with -benchtime=20x for steadier figures.
func BenchmarkMagnetToFirstByte(b *testing.B) {
	swarmtest.RequireTools(b, "libtorrent", "opentracker")
	dir := b.TempDir()
	root := filepath.Join(dir, "data")
	files := []swarmtest.FileSpec{{Path: "movie.mkv", Size: 64 << 20}, {Path: "notes.txt", Size: 3000}}
	swarmtest.WriteFiles(b, root, files)
	tr := swarmtest.StartTracker(b)
	path, ih := swarmtest.MakeTorrent(b, root, [][]string{{tr.HTTP}}, 256<<10)
	tr.Allow(ih)
	boot := dhtNet(b, 3)
	lt := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: "127.0.0.2", DHT: true, DHTBootstrap: []string{boot}})
	lt.AddTorrent(path, dir, true)
	lt.WaitSeeding(b, ih, 60*time.Second)
	lt.WaitDHTNodes(b, 1, 30*time.Second)
	lt.DHTAnnounce(ih, 0)
	time.Sleep(time.Second) // let the announce land

	cases := []struct {
		name    string
		dht     bool
		tracker bool
	}{
		{"dht", true, false},
		{"dht+tracker", true, true},
		{"tracker", false, true},
	}
	for i, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			uri := swarmtest.Magnet(ih, "")
			if bc.tracker {
				uri = swarmtest.Magnet(ih, "", tr.HTTP)
			}
			m, err := metainfo.ParseMagnet(uri)
			if err != nil {
				b.Fatal(err)
			}
			var toMeta, toByte []time.Duration
			round := 0
			for b.Loop() {
				round++
				ip := fmt.Sprintf("127.0.%d.%d", 60+i, round%250+1)
				cfg := Config{ListenAddr: ip + ":0"}
				if bc.dht {
					cfg = dhtConfig(ip, boot)
				}
				meta, first := magnetFirstByte(b, cfg, m)
				toMeta, toByte = append(toMeta, meta), append(toByte, first)
			}
			b.ReportMetric(float64(median(toMeta).Microseconds())/1000, "ms-to-metadata")
			b.ReportMetric(float64(median(toByte).Microseconds())/1000, "ms-to-first-byte")
			b.ReportMetric(float64(slices.Max(toByte).Microseconds())/1000, "max-ms-to-first-byte")
		})
	}
}

// magnetFirstByte runs one client: AddMagnet, wait for the info, read one
// byte in the middle of the first file.
func magnetFirstByte(b *testing.B, cfg Config, m *metainfo.Magnet) (toMeta, toByte time.Duration) {
	cfg.Logf = func(string, ...any) {}
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	tor, err := c.AddMagnet(m, TorrentOptions{})
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-tor.InfoReady():
	case <-ctx.Done():
		b.Fatalf("no metadata in 60 s: %+v", tor.Stats())
	}
	toMeta = time.Since(start)
	r, err := tor.NewReader(0, false)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var one [1]byte
	if _, err := r.ReadAt(ctx, one[:], r.Size()/2); err != nil {
		b.Fatalf("first byte: %v (%+v)", err, tor.Stats())
	}
	return toMeta, time.Since(start)
}
