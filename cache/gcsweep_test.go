package cache

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestGCSweepsValueLog: value-log GC reads the file it rewrites whole
// through badger's mapping; gcSweeper keeps those pages from piling up in
// the process's RSS, and the pager's sweep drops the pages of pieces
// evicted before it came. A 64 MiB cache streams 256 MiB through it at
// 330 MB/s, collecting as it goes; the value log's resident pages stay
// well under 40 MiB (12-16 MiB measured; 14-23 MiB before the
// sweeps of the older files and of the newest were apart, 102-131 MiB
// without them).
func TestGCSweepsValueLog(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	dir := t.TempDir()
	const capacity = 64 << 20
	const size = 1 << 20
	c := openT(t, Options{Dir: dir, Capacity: capacity})
	defer c.Close()
	ih := ihOf(1)
	d := pieceData(ih, 0, size)
	var peak int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			peak = max(peak, vlogRSS(t, dir))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	// Keep every eighth piece read recently, so the files GC rewrites
	// still hold live pieces (8 MiB of each 64 MiB file, which GC writes
	// into the newest file in one batch) and are not merely deleted.
	// The maintenance goroutine collects as pieces are evicted; collect
	// once more at the end.
	buf := make([]byte, 4096)
	for p := 0; p < 4*capacity/size; p++ {
		d[0], d[1] = byte(p), byte(p>>8)
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
		for q := p % 8; q < p; q += 32 {
			c.ReadAt(ih, q, buf, 0)
		}
		time.Sleep(3 * time.Millisecond) // 330 MB/s at most: a fast swarm's pace
	}
	c.collect()
	close(stop)
	wg.Wait()
	_, head := newestValueLog(dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	t.Logf("value-log file %s; %d files left of %d, disk %s; value-log RSS at the peak %s",
		formatSize(c.vlogSize), len(files), head, formatSize(c.DiskUsage()), formatSize(peak))
	if len(files) >= head {
		t.Fatalf("no value-log file was collected: nothing measured")
	}
	if peak > 40<<20 {
		t.Errorf("value-log pages mapped: %s at the peak, want at most 40 MiB", formatSize(peak))
	}
}
