package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestPipelineGrowsForBatchingSeeder: a seeder that serves requests in
// batches every 500 ms (transmission) delivers at most our pipeline per
// batch; the pipeline must grow to what it accepts (reqq 512) instead of
// creeping up by the second (transmission seeding to swarmfs crawled at
// 512 KiB/s, then at most 8 MiB/s).
func TestPipelineGrowsForBatchingSeeder(t *testing.T) {
	file := swarmtest.FileSpec{Path: "a.bin", Size: 32 << 20}
	f := newFixture(t, 256<<10, []swarmtest.FileSpec{file})
	s := &scriptSeed{fast: true, ext: true, reqq: 512, pulse: 500 * time.Millisecond, file: file}
	fp := startScriptSeed(t, "127.0.0.2", f.mi, s)
	start := time.Now()
	_, tor, dir := leecher(t, f, Config{}, fp.addr())
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	t.Logf("32 MiB in %v, largest batch %d requests", time.Since(start).Round(time.Millisecond), s.maxBatch.Load())
	if b := s.maxBatch.Load(); b < 400 {
		t.Errorf("largest batch of requests the seeder served: %d, want at least 400 of the 511 it accepts", b)
	}
}
