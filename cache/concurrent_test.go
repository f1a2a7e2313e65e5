package cache

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrent runs writers (some putting the same pieces), readers that
// check every byte, pinners and a dropper against one small cache.
func TestConcurrent(t *testing.T) {
	const capacity = 2 << 20
	c := openT(t, Options{InMemory: true, Capacity: capacity})
	defer c.Close()
	var evictions atomic.Int64
	c.OnEvict(func(ih InfoHash, piece int) {
		evictions.Add(1)
		c.Has(ih, piece)
	})
	size := func(ih InfoHash, p int) int { return 8<<10 + (p*4099+int(ih[0])*31)%(120<<10) }
	torrents := []InfoHash{ihOf(1), ihOf(2), ihOf(3)}
	const pieces = 200
	// Writers run for a while and at least minPuts puts (the race detector
	// and a busy machine slow them down), then everyone stops.
	minTime, minPuts := 1500*time.Millisecond, int64(400)
	if testing.Short() {
		minTime, minPuts = 300*time.Millisecond, 100
	}
	start := time.Now()
	stop := make(chan struct{})
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	var wg, writers sync.WaitGroup
	var puts, reads, fulls atomic.Int64
	errc := make(chan error, 64)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			// On a machine so busy that minPuts takes over 30 s, stop
			// there: the checks below still want puts, reads and
			// evictions, and a correctness test should not fail on
			// speed.
			for (time.Since(start) < minTime || puts.Load() < minPuts) && time.Since(start) < 30*time.Second {
				ih := torrents[r.IntN(len(torrents))]
				p := r.IntN(pieces)
				err := c.Put(ih, p, pieceData(ih, p, size(ih, p)))
				switch {
				case errors.Is(err, ErrFull):
					fulls.Add(1)
				case err != nil:
					report(err)
					return
				}
				puts.Add(1)
			}
		}()
	}
	for rd := 0; rd < 4; rd++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			buf := make([]byte, 128<<10)
			for running() {
				ih := torrents[r.IntN(len(torrents))]
				p := r.IntN(pieces)
				sz := size(ih, p)
				off := int64(r.IntN(sz))
				n, err := c.ReadAt(ih, p, buf[:r.IntN(sz)+1], off)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil && err != io.EOF {
					report(err)
					return
				}
				if !bytes.Equal(buf[:n], pieceData(ih, p, sz)[off:off+int64(n)]) {
					report(errors.New("read returned wrong bytes"))
					return
				}
				reads.Add(1)
			}
		}()
	}
	wg.Add(2)
	go func() { // pinner: a sliding window of pins
		defer wg.Done()
		r := rand.New(rand.NewPCG(9, 3))
		for running() {
			ih := torrents[r.IntN(2)]
			p := r.IntN(pieces - 8)
			for i := 0; i < 8; i++ {
				c.Pin(ih, p+i)
			}
			time.Sleep(time.Millisecond)
			for i := 0; i < 8; i++ {
				c.Unpin(ih, p+i)
			}
		}
	}()
	go func() { // dropper and metainfo writer
		defer wg.Done()
		for running() {
			if err := c.PutMeta(torrents[2], []byte("meta")); err != nil {
				report(err)
				return
			}
			time.Sleep(50 * time.Millisecond)
			if err := c.DropTorrent(torrents[2]); err != nil {
				report(err)
				return
			}
			c.Usage()
			c.Torrents()
		}
	}()
	writers.Wait()
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	t.Logf("%d puts (%d refused full), %d verified reads, %d evictions", puts.Load(), fulls.Load(), reads.Load(), evictions.Load())
	if c.Size() > capacity {
		t.Errorf("Size %d over capacity %d", c.Size(), capacity)
	}
	var total int64
	for _, u := range c.Usage() {
		total += u.Bytes
		for _, p := range c.Pieces(u.InfoHash) {
			sz := size(u.InfoHash, p)
			if !bytes.Equal(readAll(t, c, u.InfoHash, p, sz), pieceData(u.InfoHash, p, sz)) {
				t.Fatalf("piece %d differs", p)
			}
		}
	}
	if total != c.Size() {
		t.Errorf("Usage sums to %d, Size is %d", total, c.Size())
	}
	if puts.Load() == 0 || reads.Load() == 0 || evictions.Load() == 0 {
		t.Error("the test exercised too little")
	}
}

// TestSamePieceConcurrently has many goroutines put one piece at once: one
// write, the others see it stored.
func TestSamePieceConcurrently(t *testing.T) {
	c := openT(t, Options{InMemory: true, Capacity: 8 << 20})
	defer c.Close()
	ih := ihOf(5)
	d := pieceData(ih, 1, 200<<10)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Put(ih, 1, d); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c.Size() != int64(len(d)) {
		t.Fatalf("Size = %d, want %d", c.Size(), len(d))
	}
	if !bytes.Equal(readAll(t, c, ih, 1, len(d)), d) {
		t.Fatal("differs")
	}
}
