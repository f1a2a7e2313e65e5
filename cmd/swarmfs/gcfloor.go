package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcFloor keeps the collector's heap goal at floor bytes or more: after
// each collection it sets GOGC so that the next one comes at percent
// growth of the live heap, or once the heap reaches floor, whichever is
// later. A mount's heap is a few MiB when it starts, and collecting at 50%
// growth of that meant a collection every piece or two just when the first
// reads after the mount wanted the CPU; once pieces stream, the live heap
// is well above floor and GOGC is percent, as without it.
type gcFloor struct {
	floor   uint64
	percent int
	stopped atomic.Bool
	last    atomic.Int64 // the GOGC it set last, for tests
	tunes   atomic.Int64 // how many times it set it, for tests
	sample  [1]metrics.Sample
}

// gcSentinel is garbage whose finalizer runs once per collection; large
// enough not to share a tiny-allocator block, whose finalizers may never
// run.
type gcSentinel struct{ _ [64]byte }

// startGCFloor sets GOGC to percent with a heap goal of floor at least,
// until stop is called.
func startGCFloor(floor uint64, percent int) *gcFloor {
	g := &gcFloor{floor: floor, percent: percent}
	g.sample[0].Name = "/gc/heap/live:bytes"
	g.tune()
	g.arm()
	return g
}

func (g *gcFloor) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if g.stopped.Load() {
			return
		}
		g.tune()
		g.arm()
	})
}

// tune sets GOGC for the live heap the last collection measured.
func (g *gcFloor) tune() {
	metrics.Read(g.sample[:])
	pct := g.percent
	if g.sample[0].Value.Kind() == metrics.KindUint64 {
		pct = gcPercentFor(g.sample[0].Value.Uint64(), g.floor, g.percent)
	}
	g.last.Store(int64(pct))
	g.tunes.Add(1)
	debug.SetGCPercent(pct)
}

// gcPercentFor is the GOGC that puts the next collection at percent growth
// of live, or at floor when that is later (at most 10000%).
func gcPercentFor(live, floor uint64, percent int) int {
	if live == 0 || live*uint64(100+percent)/100 >= floor {
		return percent
	}
	return int(min(10000, floor*100/live-100))
}

// stop leaves GOGC as it is and tunes it no more.
func (g *gcFloor) stop() { g.stopped.Store(true) }
