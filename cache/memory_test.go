package cache

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
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
// budget; the file-backed part (value-log pages) is TestSweepUnmapsPages'
// business, as values this small pack many to a page and do not represent
// it. Set SWARMFS_CACHE_MEMTEST_PIECES to try other counts (204800 is
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
	c.sweep(0)
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
	reopenedUnswept := sampleMem(t).sub(base)
	c.sweep(0)
	reopened := sampleMem(t).sub(base)
	buf := make([]byte, 2<<10)
	for i := 0; i < n; i += 7 {
		if _, err := c.ReadAt(ihOf(i%64), i, buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	readUnswept := sampleMem(t).sub(base)
	c.sweep(0)
	read := sampleMem(t).sub(base)

	t.Logf("%d pieces; growth over the bare test process:", n)
	t.Logf("  open, empty:            %v", opened)
	t.Logf("  after %d puts, swept: %v", n, written)
	t.Logf("  after Close:            %v", closed)
	t.Logf("  reopened, before sweep: %v", reopenedUnswept)
	t.Logf("  reopened (index built): %v", reopened)
	t.Logf("  read 1/7, before sweep: %v", readUnswept)
	t.Logf("  after reading 1/7:      %v", read)
	t.Logf("  index: ~%d bytes of Go heap per piece", (reopened.heap-closed.heap)/int64(n))
	const budget = 100 << 20
	for _, s := range []memSample{opened, written, reopened, read} {
		if s.anon > budget {
			t.Errorf("anonymous memory grew by %s, over the %s budget", formatSize(s.anon), formatSize(budget))
		}
	}
}

// TestValuesAreMapped guards dropPages' assumption: a value of
// valueThreshold bytes or more, as item.Value hands it out, lies in a shared
// mapping of a value-log file, never in memory of our own (which
// MADV_DONTNEED would zero). A badger upgrade that broke this fails here.
func TestValuesAreMapped(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	ih := ihOf(1)
	sizes := []int{valueThreshold, 4096, 16 << 10, 1 << 20}
	for i, size := range sizes {
		mustPut(t, c, ih, i, size)
	}
	type span struct{ lo, hi uintptr }
	var vlogs []span
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[5], dir) || !strings.HasSuffix(f[5], ".vlog") {
			continue
		}
		if !strings.Contains(f[1], "s") {
			t.Fatalf("value-log mapping is not shared: %s", line)
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		l, _ := strconv.ParseUint(lo, 16, 64)
		h, _ := strconv.ParseUint(hi, 16, 64)
		vlogs = append(vlogs, span{uintptr(l), uintptr(h)})
	}
	for i, size := range sizes {
		err := c.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(pieceKeyOf(kindPiece, ih, uint32(i)))
			if err != nil {
				return err
			}
			return item.Value(func(v []byte) error {
				a := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
				for _, s := range vlogs {
					if a >= s.lo && a+uintptr(len(v)) <= s.hi {
						return nil
					}
				}
				t.Errorf("value of %d bytes at %#x is not in a value-log mapping %v", size, a, vlogs)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestDropPagesOnlyValueLog: dropPages advises a value that badger hands
// out from its value-log mapping, and refuses anything else: memory of our
// own (a heap copy of a value, which MADV_DONTNEED would zero), or a value
// said to be in another file. Without the check the heap buffer reads back
// as zeros.
func TestDropPagesOnlyValueLog(t *testing.T) {
	// Through a symbolic link: /proc/self/maps names the real directory.
	dir := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	ih := ihOf(1)
	want := mustPut(t, c, ih, 0, 256<<10)

	// A Go heap buffer, the value well inside it so that only the buffer's
	// own pages could be advised.
	heap := make([]byte, 1<<20)
	for i := range heap {
		heap[i] = byte(i*7 + 1)
	}
	orig := bytes.Clone(heap)
	v := heap[2*pageSize+100 : 2*pageSize+100+len(want)]
	maps := valueLogMaps{dir: c.mapsDir}
	if dropPages(v, -1, &maps) {
		t.Error("dropPages advised a heap buffer")
	}
	if !bytes.Equal(heap, orig) {
		t.Fatal("dropPages zeroed a heap buffer")
	}

	err := c.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(pieceKeyOf(kindPiece, ih, 0))
		if err != nil {
			return err
		}
		vp, ok := valuePointerOf(item)
		if !ok {
			t.Fatal("the piece has no value pointer")
		}
		return item.Value(func(v []byte) error {
			maps := valueLogMaps{dir: c.mapsDir}
			if dropPages(v, int(vp.fid)+1, &maps) {
				t.Error("dropPages advised a value said to be in another value-log file")
			}
			if !dropPages(v, int(vp.fid), &maps) || !dropPages(v, -1, &maps) {
				t.Error("dropPages refused a value in its value-log mapping")
			}
			if !bytes.Equal(v, want) {
				t.Error("the value changed")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestParseValueLogMaps: only shared mappings of the cache's own value-log
// files count, whatever else /proc/self/maps lists.
func TestParseValueLogMaps(t *testing.T) {
	const maps = `55dd17514000-55dd17516000 r--p 00000000 fe:00 247026                     /usr/bin/cat
7f0000000000-7f0010000000 rw-s 00000000 fe:00 11                         /data/my cache/000001.vlog
7f0010000000-7f0020000000 r--s 00000000 fe:00 12                         /data/my cache/000002.vlog (deleted)
7f0020000000-7f0030000000 rw-p 00000000 fe:00 13                         /data/my cache/000003.vlog
7f0030000000-7f0040000000 rw-s 00000000 fe:00 14                         /data/my cache/00001.mem
7f0040000000-7f0050000000 rw-s 00000000 fe:00 15                         /data/other/000004.vlog
7f0050000000-7f0060000000 rw-s 00000000 fe:00 16                         /data/my cache/sub/000005.vlog
7f0060000000-7f0070000000 rw-p 00000000 00:00 0 
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
`
	got := parseValueLogMaps(maps, "/data/my cache")
	want := []mapSpan{{0x7f0000000000, 0x7f0010000000, 1}, {0x7f0010000000, 0x7f0020000000, 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

// vlogRSS sums the resident pages of dir's value-log mappings.
func vlogRSS(t *testing.T, dir string) int64 {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	var total int64
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			name := fields[len(fields)-1]
			in = strings.HasPrefix(name, dir) && strings.HasSuffix(name, ".vlog")
		case in && len(fields) >= 2 && fields[0] == "Rss:":
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			total += kb << 10
		}
	}
	return total
}

// TestSweepUnmapsPages checks that the pager's sweep takes the value-log
// pages that writing mapped back out of the process, and that reading
// verified pieces maps none.
func TestSweepUnmapsPages(t *testing.T) {
	for _, size := range []int{16 << 10, 256 << 10} {
		t.Run(formatSize(int64(size)), func(t *testing.T) {
			dir := t.TempDir()
			c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
			defer c.Close()
			ih := ihOf(1)
			n := (32 << 20) / size
			for p := 0; p < n; p++ {
				mustPut(t, c, ih, p, size)
			}
			c.sweep(0)
			written := vlogRSS(t, dir)
			buf := make([]byte, size)
			for p := 0; p < n; p++ {
				if _, err := c.ReadAt(ih, p, buf, 0); err != nil {
					t.Fatal(err)
				}
			}
			read := vlogRSS(t, dir)
			c.sweep(0)
			swept := vlogRSS(t, dir)
			t.Logf("32 MiB of %s pieces: value-log RSS after writing and a sweep %s; after reading %s; after a sweep %s",
				formatSize(int64(size)), formatSize(written), formatSize(read), formatSize(swept))
			if written > 2<<20 || swept > 2<<20 {
				t.Errorf("sweeps left %s and %s mapped", formatSize(written), formatSize(swept))
			}
			// Pieces written in this process are verified: their reads
			// are direct (pread), and map nothing.
			if read > written+(1<<20) {
				t.Errorf("reading verified pieces mapped %s", formatSize(read-written))
			}
			if n := c.pagesRefused.Load(); n != 0 {
				t.Errorf("sweeps refused to unmap %d values", n)
			}
		})
	}
}

// TestPrefill: prefill puts a new value-log file in the page cache without
// reading any of it into the process's RSS, and leaves what badger already
// wrote alone.
func TestPrefill(t *testing.T) {
	const size = 64 << 20
	f, err := os.Create(filepath.Join(t.TempDir(), "000001.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(2 * size); err != nil {
		t.Fatal(err)
	}
	head := []byte("written before the prefill")
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Skipf("fallocate: %v (prefill only follows a preallocation)", err)
	}
	// Reset the peak RSS (VmHWM), then prefill.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
	before := peakRSS(t)
	prefill(f, 0, size)
	grew := peakRSS(t) - before
	cached, pages := cachedPages(t, f, size)
	t.Logf("prefill of %s: %d of %d pages in the page cache; peak RSS grew %s",
		formatSize(size), cached, pages, formatSize(grew))
	if cached < pages*9/10 {
		t.Errorf("only %d of %d pages in the page cache", cached, pages)
	}
	if grew > 8<<20 {
		t.Errorf("peak RSS grew by %s during the prefill", formatSize(grew))
	}
	got := make([]byte, len(head))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, head) {
		t.Errorf("the bytes written before the prefill read back as %q, %v", got, err)
	}
}

// peakRSS is the process's VmHWM.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// TestRefolio: refolio reads the start of a full value-log file back into
// the page cache (in large folios where the kernel can) with its bytes
// unchanged, and leaves a file it cannot find alone.
func TestRefolio(t *testing.T) {
	const small = 8 << 20
	name := filepath.Join(t.TempDir(), "000001.vlog")
	data := pieceData(ihOf(9), 0, small+(1<<20))
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Out of the page cache first, so only refolio can bring it back.
	if w, err := os.Open(name); err == nil {
		_ = w.Sync()
		_ = unix.Fadvise(int(w.Fd()), 0, 0, unix.FADV_DONTNEED)
		w.Close()
	}
	refolio(name, small)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cached, pages := cachedPages(t, f, small); cached != pages {
		t.Errorf("after refolio, %d of %d pages are in the page cache", cached, pages)
	}
	got, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file changed: %v", err)
	}
	refolio(filepath.Join(t.TempDir(), "gone.vlog"), small) // no panic, nothing to do
}

// cachedPages counts the pages of f's first size bytes that are in the page
// cache, of all of them.
func cachedPages(t *testing.T, f *os.File, size int) (cached, pages int) {
	t.Helper()
	vec := residency(t, f, size)
	for _, v := range vec {
		cached += int(v & 1)
	}
	return cached, len(vec)
}

// residency is mincore's answer for the first size bytes of f: a byte a
// page, bit 0 set when the page is in the page cache.
func residency(t *testing.T, f *os.File, size int) []byte {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, size/pageSize)
	if err := mincore(m, vec); err != nil {
		t.Fatal(err)
	}
	return vec
}

// cachedExtent is how far into f (of size bytes) its pages in the page
// cache reach: the end of the last one. Unlike a count, it does not
// change when pages behind are dropped (the pager drops what was written
// and swept) or some are reclaimed under memory pressure.
func cachedExtent(t *testing.T, f *os.File, size int) int {
	t.Helper()
	vec := residency(t, f, size)
	for i := len(vec) - 1; i >= 0; i-- {
		if vec[i]&1 != 0 {
			return (i + 1) * pageSize
		}
	}
	return 0
}

// TestPrefillFollowsWrites: a new value-log file is prefilled a bounded
// distance ahead of what was put into it, and further as more is put, not
// whole as soon as it starts (64-128 MiB zeroed, mapped and unmapped for a
// file that a download might end in at once).
func TestPrefillFollowsWrites(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err == nil && fs.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs: fallocate puts the whole file in memory, there is nothing to prefill")
	}
	probe, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	ferr := unix.Fallocate(int(probe.Fd()), 0, 0, 1<<20)
	probe.Close()
	os.Remove(probe.Name())
	if ferr != nil {
		t.Skipf("fallocate: %v (prefill only follows a preallocation)", ferr)
	}
	c := openT(t, Options{Dir: dir, Capacity: 512 << 20})
	defer c.Close()
	const piece = 1 << 20
	ih := ihOf(1)
	n := 0
	put := func(mb int) {
		for range mb {
			mustPut(t, c, ih, n, piece)
			n++
		}
		c.prefills.Wait()
	}
	head := func() int {
		name, _ := newestValueLog(c.dir)
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return cachedExtent(t, f, int(c.vlogSize))
	}
	put(4)
	// What was put, the prefill ahead of it, what badger's first write
	// fault read ahead (read_ahead_kb, up to 8 MiB), a step of slack.
	bound := 4*piece + prefillAhead + 8<<20 + prefillStep
	if got := head(); got > bound {
		t.Errorf("after 4 MiB put, the first %d MiB of the %d MiB value-log file reach the page cache, want at most %d MiB",
			got>>20, c.vlogSize>>20, bound>>20)
	}
	put(36)
	if got := head(); got < 40*piece+prefillAhead-prefillStep {
		t.Errorf("after 40 MiB put, the first %d MiB of the value-log file reach the page cache, want the prefill %d MiB ahead",
			got>>20, prefillAhead>>20)
	}
}

// TestPutSweepsWhatItMapped: a writer faster than the pager's sweeps (at
// most one every sweepGap, later when the pager is held up) must not pile
// up the value-log pages it maps: the Put that brings the pieces written
// since the last sweep to 2*KeepMapped sweeps them itself. 64 MiB of 1 MiB
// pieces as fast as they go, the value log's resident pages read after
// every Put: at most 6 MiB, 2*KeepMapped and a large folio (4 MiB
// measured; 8 MiB with KeepMapped at 4 MiB, 24-30 MiB when only the pager
// swept).
func TestPutSweepsWhatItMapped(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	ih := ihOf(1)
	const size = 1 << 20
	d := pieceData(ih, 0, size)
	var peak int64
	for p := 0; p < 64; p++ {
		d[0] = byte(p)
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, vlogRSS(t, dir))
	}
	const limit = 6 << 20
	t.Logf("64 MiB of 1 MiB pieces: value-log RSS at most %s after a Put (limit %s)", formatSize(peak), formatSize(limit))
	if peak > limit {
		t.Errorf("value-log pages mapped: %s after a Put, want at most %s", formatSize(peak), formatSize(limit))
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

// TestRotationUnmapsOlderFiles: once badger starts a new value-log file, the
// pages of the one it finished are dropped whole, by the next Put, rather
// than left to the sweeps by key (which leave what lies between the pieces
// they list, and run after 2*KeepMapped, when the pager is not late). With
// sweeps by key out of the way (a KeepMapped larger than what is written),
// the files older than the one being written kept all they were written
// through mapped (40 MiB after 40 MiB written into 8 MiB files); none now.
// Also while a prefill holds the head file (as it does for milliseconds
// after each new file, longer on a busy machine), when the Puts cannot
// follow the head: checking only there left the file before mapped whole
// in a mount streaming through a small cache.
func TestRotationUnmapsOlderFiles(t *testing.T) {
	for _, held := range []bool{false, true} {
		name := "puts"
		if held {
			name = "prefill running"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := openT(t, Options{Dir: dir, Capacity: 64 << 20, KeepMapped: 1 << 30})
			defer c.Close()
			ih := ihOf(1)
			const size = 1 << 20
			d := pieceData(ih, 0, size)
			if err := c.Put(ih, 0, d); err != nil {
				t.Fatal(err)
			}
			if held {
				c.head.mu.Lock() // as a prefill does while it runs
				defer c.head.mu.Unlock()
			}
			var peak int64
			files := 0
			for p := 1; p < 40; p++ {
				d[0] = byte(p)
				if err := c.Put(ih, p, d); err != nil {
					t.Fatal(err)
				}
				_, head := newestValueLog(dir)
				var older int64
				for fid, n := range vlogRSSByFile(t, dir) {
					if fid < head {
						older += n
					}
				}
				peak = max(peak, older)
				files = head
			}
			const limit = 2 << 20
			t.Logf("40 MiB into %s value-log files (%d started): older files' pages mapped after a Put, at most %s (limit %s)",
				formatSize(c.vlogSize), files, formatSize(peak), formatSize(limit))
			if peak > limit {
				t.Errorf("files older than the one being written had %s mapped after a Put, want at most %s", formatSize(peak), formatSize(limit))
			}
		})
	}
}
