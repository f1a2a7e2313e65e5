package engine

import (
	"runtime"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestPieceBuffersOutliveGC: a download returns each piece buffer and takes
// another a moment later, with garbage collections in between (a mount
// collects often, under its soft memory limit). A sync.Pool dropped its
// buffers at every second collection, so each piece allocated a new one.
func TestPieceBuffersOutliveGC(t *testing.T) {
	const n = 1 << 20
	putPieceBuf(getPieceBuf(n)) // one kept
	allocs := testing.AllocsPerRun(20, func() {
		b := getPieceBuf(n)
		putPieceBuf(b)
		runtime.GC()
		runtime.GC()
	})
	if allocs >= 1 {
		t.Errorf("%.1f allocations per piece across garbage collections, want none", allocs)
	}
}

// TestBufListBounded: what a bufList keeps never exceeds its bound, and it
// hands out buffers of the length asked for.
func TestBufListBounded(t *testing.T) {
	l := newBufList(3 << 20)
	var bufs [][]byte
	for range 5 {
		bufs = append(bufs, l.get(1<<20))
	}
	bufs = append(bufs, l.get(512<<10))
	for _, b := range bufs {
		l.put(b)
	}
	if got := l.kept(); got > 3<<20 {
		t.Errorf("kept %d bytes, want at most %d", got, 3<<20)
	}
	if got := len(l.get(512 << 10)); got != 512<<10 {
		t.Errorf("get(512 KiB) returned %d bytes", got)
	}
	if got := len(l.get(1 << 20)); got != 1<<20 {
		t.Errorf("get(1 MiB) returned %d bytes", got)
	}
}

// TestWarmPieceBuffers: a torrent with pieces to download readies buffers
// for its first pieces before any arrive; a complete one readies none.
func TestWarmPieceBuffers(t *testing.T) {
	const pl = 2 << 20
	for pieceBufs.count(pl) > 0 {
		pieceBufs.get(pl) // what earlier tests left
	}
	f := newFixture(t, pl, []swarmtest.FileSpec{{Path: "a.bin", Size: 4 * pl}})
	seeder(t, f, Config{ListenAddr: "127.0.0.2:0", NoTrackers: true})
	time.Sleep(50 * time.Millisecond)
	if n := pieceBufs.count(pl); n != 0 {
		t.Fatalf("a complete torrent readied %d piece buffers", n)
	}
	leecher(t, f, Config{ListenAddr: "127.0.0.3:0", NoTrackers: true})
	deadline := time.Now().Add(10 * time.Second)
	for pieceBufs.count(pl) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d piece buffers ready 10 s after the torrent started, want 2", pieceBufs.count(pl))
		}
		time.Sleep(time.Millisecond)
	}
	// Bounded: a length past warmPieces readies none.
	warmPieceBufs(warmPieces + 1<<20)
	if n := pieceBufs.count(warmPieces + 1<<20); n != 0 {
		t.Fatalf("%d buffers of %d bytes readied", n, warmPieces+1<<20)
	}
}

// TestBufListMakesRoomForNewLength: buffers of a length nobody asks for any
// more (a finished torrent's pieces) do not keep a new length out.
func TestBufListMakesRoomForNewLength(t *testing.T) {
	l := newBufList(8 << 20)
	var old [][]byte
	for range 2 {
		old = append(old, l.get(4<<20))
	}
	for _, b := range old {
		l.put(b)
	}
	b := l.get(1 << 20)
	l.put(b)
	if got := l.get(1 << 20); &got[0] != &b[0] {
		t.Errorf("a 1 MiB buffer was not kept beside 8 MiB of 4 MiB ones")
	}
	if got := l.kept(); got > 8<<20 {
		t.Errorf("kept %d bytes, want at most %d", got, 8<<20)
	}
}
