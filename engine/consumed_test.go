package engine

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// consumeLog is an in-memory store whose writes take a while (so readers
// copy pieces from memory first) and that logs what it is told is consumed.
type consumeLog struct {
	mem   storage.Memory
	delay time.Duration

	mu       sync.Mutex
	stored   map[int]bool
	consumed []int
	early    []int // told before the piece was stored
}

type consumeLogTorrent struct {
	storage.Torrent
	s *consumeLog
}

func (s *consumeLog) Open(ih metainfo.Hash, info *metainfo.Info) (storage.Torrent, []int, error) {
	t, have, err := s.mem.Open(ih, info)
	if err != nil {
		return nil, nil, err
	}
	s.stored = make(map[int]bool)
	return &consumeLogTorrent{Torrent: t, s: s}, have, nil
}

func (t *consumeLogTorrent) WritePiece(i int, data []byte) error {
	time.Sleep(t.s.delay)
	err := t.Torrent.WritePiece(i, data)
	t.s.mu.Lock()
	t.s.stored[i] = true
	t.s.mu.Unlock()
	return err
}

func (t *consumeLogTorrent) Consumed(i int) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.consumed = append(t.s.consumed, i)
	if !t.s.stored[i] {
		t.s.early = append(t.s.early, i)
	}
}

// told returns the distinct pieces told consumed, sorted, and those told
// before they were stored.
func (s *consumeLog) told() (consumed, early []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	consumed = slices.Clone(s.consumed)
	slices.Sort(consumed)
	return slices.Compact(consumed), slices.Clone(s.early)
}

// TestReaderTellsConsumed: a store that keeps pieces in memory it can let
// go of (the cache's pages) is told of each piece a reader read to its end,
// once the piece is stored, also when the read copied it from memory while
// the store was still writing it; a piece read only in part is not told.
func TestReaderTellsConsumed(t *testing.T) {
	const pieceLen = 64 << 10
	files := []swarmtest.FileSpec{{Path: "f.bin", Size: 8 * pieceLen}}
	f := newFixture(t, pieceLen, files)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	store := &consumeLog{delay: 300 * time.Millisecond}
	c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: store})
	_, r := addReader(t, c, f.mi, TorrentOptions{Peers: peersOf(sc)}, 0, false)
	read := func(off, n int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		buf := make([]byte, n)
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			t.Fatalf("read %d bytes at %d: %v", n, off, err)
		}
	}
	// Pieces 0 and 1 to their ends, in reads of 16 KiB as a mount's;
	// piece 2 up to its last byte but one.
	start := time.Now()
	for off := int64(0); off < 2*pieceLen; off += 16 << 10 {
		read(off, 16<<10)
	}
	read(2*pieceLen, pieceLen-1)
	readIn := time.Since(start)
	// Piece 5 whole, in one read, which reaches into piece 6.
	read(5*pieceLen, pieceLen+1)

	waitTold := func(want ...int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, early := store.told()
			if len(early) > 0 {
				t.Fatalf("told of pieces %v before they were stored", early)
			}
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("told of pieces %v consumed, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitTold(0, 1, 5)
	if readIn >= 2*store.delay {
		t.Logf("the reads took %v: they waited for the store (not the path under test)", readIn)
	}
	// Piece 2 read to its end now.
	read(2*pieceLen, pieceLen)
	waitTold(0, 1, 2, 5)
}
