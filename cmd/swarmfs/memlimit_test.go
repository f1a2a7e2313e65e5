package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
)

// TestOpenStoreSetsMemoryLimit: a mount or serve process runs with a soft
// memory limit that grows with the cache's index, not with what streams
// through it, unless GOMEMLIMIT says otherwise.
func TestOpenStoreSetsMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	old := debug.SetMemoryLimit(-1)
	oldGC := debug.SetGCPercent(-1)
	debug.SetGCPercent(oldGC)
	t.Cleanup(func() { debug.SetMemoryLimit(old); debug.SetGCPercent(oldGC) })
	debug.SetMemoryLimit(math.MaxInt64)
	var cfg engine.Config
	const capacity = 4 << 30
	ca, err := openStore(t.TempDir(), capacity, &cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	got := debug.SetMemoryLimit(-1)
	if got != memLimit(capacity) {
		t.Errorf("memory limit %d, want %d", got, memLimit(capacity))
	}
	// The index's room grows with the cache; a cache under 64 MiB
	// lowers the base, never below 48 MiB.
	for _, c := range []struct{ capacity, lo, hi int64 }{
		{0, 48 << 20, 48 << 20},
		{32 << 20, 52 << 20, 53 << 20},
		{64 << 20, 56 << 20, 57 << 20},
		{4 << 30, 60 << 20, 61 << 20},
		{10 << 30, 66 << 20, 67 << 20},
	} {
		if l := memLimit(c.capacity); l < c.lo || l > c.hi {
			t.Errorf("memLimit(%d MiB) = %.1f MiB, want %d-%d MiB", c.capacity>>20, float64(l)/(1<<20), c.lo>>20, c.hi>>20)
		}
	}
}

// TestGCPercentFor: GOGC is the given percent once the live heap is large
// enough, and puts the goal at the floor below that.
func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, floor   uint64
		percent, want int
	}{
		{0, 24 << 20, 50, 50},
		{4 << 20, 24 << 20, 50, 500},
		{16 << 20, 24 << 20, 50, 50},
		{12 << 20, 24 << 20, 50, 100},
		{40 << 20, 24 << 20, 50, 50},
		{1 << 10, 24 << 20, 50, 10000},
	} {
		if got := gcPercentFor(c.live, c.floor, c.percent); got != c.want {
			t.Errorf("gcPercentFor(%d, %d, %d) = %d, want %d", c.live, c.floor, c.percent, got, c.want)
		}
	}
}

// TestGCFloorTunes: the tuner sets GOGC after every collection until it is
// stopped.
func TestGCFloorTunes(t *testing.T) {
	oldGC := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(oldGC) })
	g := startGCFloor(1<<40, 50)
	if g.last.Load() != 10000 {
		t.Fatalf("GOGC %d with a 1 TiB floor, want 10000", g.last.Load())
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d tunes", what, g.tunes.Load())
			}
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
	wait("no tune after collections", func() bool { return g.tunes.Load() >= 4 })
	g.stop()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	n := g.tunes.Load()
	for range 3 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if g.tunes.Load() > n+1 {
		t.Errorf("tuned %d times after stop", g.tunes.Load()-n)
	}
}
