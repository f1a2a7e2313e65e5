package main

import (
	"math"
	"runtime/debug"
	"testing"

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
	if l := memLimit(capacity); l < 64<<20 || l > 96<<20 {
		t.Errorf("memLimit(4 GiB) = %d MiB, want 64-96 MiB", l>>20)
	}
}
