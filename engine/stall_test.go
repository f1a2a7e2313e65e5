package engine

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestRandomReadersCappedSeeder: eight readers seeking around two files at
// once, cold, from one libtorrent seeder capped at 2 MB/s. Every read must
// complete with the right bytes, and the download must not waste most of
// what it fetches.
func TestRandomReadersCappedSeeder(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "big.bin", Size: 24 << 20}, {Path: "media/clip.mp4", Size: 6 << 20}}
	f := newLTFixture(t, files, 256<<10, false)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", UploadRate: 2_000_000})
	lt.AddTorrent(f.path, f.dir, true)
	lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
	c := newClient(t, Config{Storage: &storage.Memory{}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fileIdx := map[string]int{}
	for i, fl := range f.mi.Info.Files {
		fileIdx[fl.DisplayPath()] = i
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	randomReads := func(spec swarmtest.FileSpec, n int, seed uint64) error {
		r, err := tor.NewReader(fileIdx[spec.Path], false)
		if err != nil {
			return err
		}
		defer r.Close()
		rng := rand.New(rand.NewPCG(seed, 77))
		buf := make([]byte, 64<<10)
		want := make([]byte, 64<<10)
		for range n {
			off := rng.Int64N(spec.Size)
			size := 1 + rng.IntN(len(buf))
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			k, err := r.ReadAt(ctx, buf[:size], off)
			cancel()
			if err != nil && k < int(min(int64(size), spec.Size-off)) {
				s := tor.Stats()
				return fmt.Errorf("%s: read %d at %d: %v (torrent %d/%d pieces, downloaded %d)", spec.Path, size, off, err, s.PiecesHave, s.Pieces, s.Downloaded)
			}
			spec.ReadAt(want[:k], off)
			if !bytes.Equal(buf[:k], want[:k]) {
				return fmt.Errorf("%s: read %d at %d: wrong bytes", spec.Path, size, off)
			}
		}
		return nil
	}
	start := time.Now()
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- randomReads(files[0], 15, uint64(g))
			if g%2 == 0 {
				errs <- randomReads(files[1], 5, uint64(g))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := tor.Stats()
	t.Logf("done in %v: %d/%d pieces, downloaded %d bytes for %d completed", time.Since(start), s.PiecesHave, s.Pieces, s.Downloaded, s.BytesCompleted)
	if s.Downloaded > 2*s.BytesCompleted+(4<<20) {
		t.Errorf("downloaded %d bytes to complete %d: most of the transfer was wasted", s.Downloaded, s.BytesCompleted)
	}
}
