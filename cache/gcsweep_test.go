package cache

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGCSweepsValueLog: value-log GC reads the file it rewrites whole
// through badger's mapping; gcSweeper keeps those pages from piling up in
// the process's RSS, and the pager's sweep drops the pages of pieces
// evicted before it came. A 64 MiB cache streams 256 MiB through it at
// 330 MB/s, collecting as it goes; the value log's resident pages stay
// well under 40 MiB (10 MiB measured with its 16 MiB value-log files,
// 14-30 MiB when they were 64 MiB; 102-131 MiB without the sweeps).
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

// TestSmallCacheValueLogFiles: GC reads the value-log file it rewrites
// whole through badger's mapping, and its sweeper cannot always keep up
// (it waits for a CPU like anything else), so a file's size is what one GC
// may map at worst. A small cache's files are an eighth of it: streaming
// 256 MiB through a 64 MiB cache with no sweeping at all (KeepMapped < 0),
// no file ever has more than 8 MiB mapped (and a large folio past each
// end); with files of a quarter of the cache, one had 16 MiB, and with
// files as large as the cache, 64 MiB.
func TestSmallCacheValueLogFiles(t *testing.T) {
	for _, tc := range []struct{ capacity, want int64 }{
		{16 << 20, 8 << 20},
		{64 << 20, 8 << 20},
		{128 << 20, 16 << 20},
		{256 << 20, 64 << 20},
		{1 << 30, 64 << 20},
		{2 << 30, 128 << 20},
		{50 << 30, 128 << 20},
	} {
		if got := valueLogFileSize(tc.capacity); got != tc.want {
			t.Errorf("valueLogFileSize(%s) = %s, want %s", formatSize(tc.capacity), formatSize(got), formatSize(tc.want))
		}
	}
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	dir := t.TempDir()
	const capacity = 64 << 20
	const size = 1 << 20
	c := openT(t, Options{Dir: dir, Capacity: capacity, KeepMapped: -1})
	defer c.Close()
	ih := ihOf(1)
	d := pieceData(ih, 0, size)
	var peak int64
	for p := 0; p < 4*capacity/size; p++ {
		d[0], d[1] = byte(p), byte(p>>8)
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
		if p%4 == 0 {
			for _, v := range vlogRSSByFile(t, dir) {
				peak = max(peak, v)
			}
		}
	}
	c.collect()
	t.Logf("value-log file %s; the most mapped of one file %s", formatSize(c.vlogSize), formatSize(peak))
	if limit := int64(capacity/8 + 4<<20); peak > limit { // large folios past both ends
		t.Errorf("a value-log file had %s mapped, want at most %s", formatSize(peak), formatSize(limit))
	}
}

// vlogRSSByFile returns the resident bytes of each value-log file of dir
// mapped into the process, by file number.
func vlogRSSByFile(t *testing.T, dir string) map[int]int64 {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	fid := -1
	m := map[int]int64{}
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			name := fields[len(fields)-1]
			fid = -1
			if num, ok := strings.CutSuffix(filepath.Base(name), ".vlog"); ok && strings.HasPrefix(name, dir) {
				fid, _ = strconv.Atoi(num)
			}
		case fid >= 0 && len(fields) >= 2 && fields[0] == "Rss:":
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			m[fid] += kb << 10
		}
	}
	return m
}
