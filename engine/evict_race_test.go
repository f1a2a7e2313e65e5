package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// readWatch runs reads on goroutines and fails the test as soon as one
// outlives its bound: a read deaf to its context never returns at all.
type readWatch struct {
	bound   time.Duration
	started []atomic.Int64 // per reader: unix nanos of the read in flight, 0 if none
	ended   atomic.Int64
}

func newReadWatch(readers int, bound time.Duration) *readWatch {
	return &readWatch{bound: bound, started: make([]atomic.Int64, readers)}
}

// read runs one read of reader g with a context bounded by w.bound.
func (w *readWatch) read(g int, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.bound)
	defer cancel()
	w.started[g].Store(time.Now().UnixNano())
	err := f(ctx)
	w.started[g].Store(0)
	w.ended.Add(1)
	return err
}

// wait returns when finished is closed, or fails the test once a read has
// run for its bound plus grace.
func (w *readWatch) wait(t *testing.T, finished <-chan struct{}, grace time.Duration, state func() string) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			return
		case now := <-tick.C:
			for g := range w.started {
				if s := w.started[g].Load(); s != 0 && now.Sub(time.Unix(0, s)) > w.bound+grace {
					t.Fatalf("reader %d: a read has not ended %v after it started (bound %v); %d reads ended; %s",
						g, now.Sub(time.Unix(0, s)).Round(time.Millisecond), w.bound, w.ended.Load(), state())
				}
			}
		}
	}
}

// TestTinyCacheReadsEnd is the eviction race of issue 17: a cache of four
// pieces, the background policy fetching everything, and five readers
// reading whole pieces at random, concurrently. Pieces are evicted while
// they are being written and verified; a have-bit that outlived its piece
// left reads spinning for ever, deaf to their context (42 of 60 reads
// ended). Every read must end within its bound, with the right bytes or
// its context's error.
func TestTinyCacheReadsEnd(t *testing.T) {
	const pieceLen = 256 << 10
	files := []swarmtest.FileSpec{{Path: "a.bin", Size: 12 << 20}}
	f := newFixture(t, pieceLen, files)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})

	ca, err := cache.Open(cache.Options{InMemory: true, Capacity: 4 * pieceLen, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: storage.NewCache(ca), MaxWindowBytes: pieceLen})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: peersOf(sc)})
	if err != nil {
		t.Fatal(err)
	}

	const (
		readers = 5
		reads   = 12
	)
	w := newReadWatch(readers, 15*time.Second)
	var good atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, readers*reads)
	for g := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := tor.NewReader(0, false)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(uint64(g), 17))
			buf := make([]byte, pieceLen)
			want := make([]byte, pieceLen)
			for range reads {
				off := int64(rng.IntN(int(files[0].Size/pieceLen))) * pieceLen
				err := w.read(g, func(ctx context.Context) error {
					n, err := r.ReadAt(ctx, buf, off)
					if err != nil {
						if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
							return nil // ended within its bound, without data
						}
						return fmt.Errorf("read at %d: %v", off, err)
					}
					files[0].ReadAt(want[:n], off)
					if !bytes.Equal(buf[:n], want[:n]) {
						return fmt.Errorf("read at %d: wrong bytes", off)
					}
					good.Add(1)
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	w.wait(t, finished, 5*time.Second, func() string {
		s := tor.Stats()
		return fmt.Sprintf("%d pieces had, %d bytes downloaded, %d cached", s.PiecesHave, s.Downloaded, ca.Size())
	})
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := tor.Stats()
	t.Logf("%d of %d reads ended, %d with data; downloaded %d bytes, %d pieces had, %d cached",
		w.ended.Load(), readers*reads, good.Load(), s.Downloaded, s.PiecesHave, ca.Size())
	if good.Load() < readers*reads/2 {
		t.Errorf("only %d of %d reads returned data", good.Load(), readers*reads)
	}
}
