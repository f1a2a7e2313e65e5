package cache

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

type memSample struct {
	rss, anon, file, heap int64
}

func sampleMem(t *testing.T) memSample {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heap: int64(ms.HeapInuse)}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[0], 10, 64)
		switch name {
		case "VmRSS":
			s.rss = kb << 10
		case "RssAnon":
			s.anon = kb << 10
		case "RssFile":
			s.file = kb << 10
		}
	}
	return s
}

func (s memSample) sub(b memSample) memSample {
	return memSample{s.rss - b.rss, s.anon - b.anon, s.file - b.file, s.heap - b.heap}
}

func (s memSample) String() string {
	return "RSS " + formatSize(s.rss) + " (anon " + formatSize(s.anon) + ", file " + formatSize(s.file) +
		"), Go heap " + formatSize(s.heap)
}

// TestIndexMemory emulates the index of a 50 GiB cache of 1 MiB pieces:
// 51,200 pieces (of 2 KiB each, so the run writes 100 MiB, not 50 GiB) and
// reports what the process pays for them, after writing and after a
// restart that rebuilds the index. It holds the anonymous memory to the
// budget. Set SWARMFS_CACHE_MEMTEST_PIECES to try other counts (204800 is
// 50 GiB of 256 KiB pieces).
func TestIndexMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MiB")
	}
	if raceBuild {
		t.Skip("the race detector inflates memory")
	}
	n := 51200
	if v, err := strconv.Atoi(os.Getenv("SWARMFS_CACHE_MEMTEST_PIECES")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	debug.FreeOSMemory()
	base := sampleMem(t)
	c := openT(t, Options{Dir: dir, Capacity: 50 << 30})
	opened := sampleMem(t).sub(base)
	d := make([]byte, 2<<10)
	for i := 0; i < n; i++ {
		d[0], d[1], d[2] = byte(i), byte(i>>8), byte(i>>16)
		if err := c.Put(ihOf(i%64), i, d); err != nil {
			t.Fatal(err)
		}
	}
	written := sampleMem(t).sub(base)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	closed := sampleMem(t).sub(base)

	c = openT(t, Options{Dir: dir, Capacity: 50 << 30})
	defer c.Close()
	if got := len(c.Pieces(ihOf(0))); got != (n+63)/64 {
		t.Fatalf("reopened index has %d pieces of torrent 0, want %d", got, (n+63)/64)
	}
	reopened := sampleMem(t).sub(base)
	buf := make([]byte, 2<<10)
	for i := 0; i < n; i += 7 {
		if _, err := c.ReadAt(ihOf(i%64), i, buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	read := sampleMem(t).sub(base)

	t.Logf("%d pieces; growth over the bare test process:", n)
	t.Logf("  open, empty:            %v", opened)
	t.Logf("  after %d puts:       %v", n, written)
	t.Logf("  after Close:            %v", closed)
	t.Logf("  reopened (index built): %v", reopened)
	t.Logf("  after reading 1/7:      %v", read)
	t.Logf("  index: ~%d bytes of Go heap per piece", (reopened.heap-closed.heap)/int64(n))
	const budget = 100 << 20
	for _, s := range []memSample{opened, written, reopened, read} {
		if s.anon > budget {
			t.Errorf("anonymous memory grew by %s, over the %s budget", formatSize(s.anon), formatSize(budget))
		}
	}
}

// TestStreamingMapsNothing streams 256 MiB of 1 MiB pieces through a 64 MiB
// cache, reading each back, and checks that the process does not grow with
// it: pieces are written with pwrite and read with pread, so their pages stay
// in the page cache, outside the process. (With pieces in badger's value
// log, written through its mapping, every page written counted in the RSS
// until a sweep unmapped it.)
func TestStreamingMapsNothing(t *testing.T) {
	if raceBuild {
		t.Skip("the race detector inflates memory")
	}
	c := openT(t, Options{Dir: t.TempDir(), Capacity: 64 << 20})
	defer c.Close()
	ih := ihOf(1)
	d := pieceData(ih, 0, 1<<20)
	buf := make([]byte, 1<<20)
	base := sampleMem(t)
	var peak memSample
	for p := 0; p < 256; p++ {
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadAt(ih, p, buf, 0); err != nil {
			t.Fatal(err)
		}
		if p%32 == 31 {
			if s := sampleMem(t).sub(base); s.rss > peak.rss {
				peak = s
			}
		}
	}
	t.Logf("streaming 256 MiB through a 64 MiB cache: peak growth %v", peak)
	if limit := int64(12 << 20); peak.rss > limit {
		t.Errorf("RSS grew by %s, want at most %s", formatSize(peak.rss), formatSize(limit))
	}
}

// TestBadgerBuffersHeap: what badger keeps of the Go heap for a cache's
// memtable and its table builders, after a flush and a compaction, as every
// collection does: they stay live all the time, under the soft memory limit
// the mount sets. Memtables of 2 MiB and tables of 1 MiB hold a cache's keys
// and value pointers as well (about 100 bytes a piece); at 4 MiB and 2 MiB
// badger kept about 10 MiB (a 5.3 MiB arena and a pooled 4 MiB builder).
func TestBadgerBuffersHeap(t *testing.T) {
	if raceBuild {
		t.Skip("the race detector inflates memory")
	}
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	base := heap()
	c := openT(t, Options{Dir: t.TempDir(), Capacity: 1 << 30})
	defer c.Close()
	ih := ihOf(1)
	for p := 0; p < 64; p++ {
		mustPut(t, c, ih, p, 64<<10)
	}
	if err := c.compact(); err != nil {
		t.Fatal(err)
	}
	grew := heap() - base
	t.Logf("Go heap held after Open, 64 puts and a compaction: %s", formatSize(grew))
	if limit := int64(6 << 20); grew > limit {
		t.Errorf("Go heap grew by %s, want at most %s", formatSize(grew), formatSize(limit))
	}
}
