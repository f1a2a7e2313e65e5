package cache

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident returns how many bytes of [off, off+n) of the file are in the
// page cache.
func resident(t *testing.T, path string, off, n int64) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (n+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	var in int64
	for _, v := range vec {
		if v&1 != 0 {
			in += page
		}
	}
	return in
}

// pagesFixture is a cache on the disk with 1 MiB pieces of one torrent,
// each marked with its index.
type pagesFixture struct {
	t    *testing.T
	c    *Cache
	ih   InfoHash
	path string // the torrent's piece file
}

const pagesPiece = 1 << 20

func newPagesFixture(t *testing.T, ih InfoHash) *pagesFixture {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is on tmpfs, whose pages cannot be dropped: set TMPDIR to a folder on a disk", dir)
	}
	c := openT(t, Options{Dir: dir, Capacity: 256 << 20})
	t.Cleanup(func() { c.Close() })
	return &pagesFixture{t: t, c: c, ih: ih, path: filepath.Join(dir, piecesDir, dataFileName(ih, shiftFor(pagesPiece)))}
}

func (f *pagesFixture) data(p int) []byte {
	d := pieceData(f.ih, 0, pagesPiece)
	d[0], d[1] = byte(p), byte(p>>8)
	return d
}

func (f *pagesFixture) put(p int) {
	if err := f.c.Put(f.ih, p, f.data(p)); err != nil {
		f.t.Fatal(err)
	}
}

// cached returns how many bytes of piece p are in the page cache.
func (f *pagesFixture) cached(p int) int64 {
	return resident(f.t, f.path, int64(p)*pagesPiece, pagesPiece)
}

// readBack checks that pieces [0, n) read back intact.
func (f *pagesFixture) readBack(n int) {
	buf := make([]byte, pagesPiece)
	for p := range n {
		if k, err := f.c.ReadAt(f.ih, p, buf, 0); err != nil || k != pagesPiece || string(buf) != string(f.data(p)) {
			f.t.Fatalf("piece %d: n=%d err=%v, or wrong bytes", p, k, err)
		}
	}
}

// TestConsumedPagesDropped: a piece a reader has consumed leaves the page
// cache once enough newer pieces were written (its bytes were kept twice:
// in the piece file's pages and in the mount's), while a piece nobody read
// keeps its pages, and both still read back intact (from the disk).
func TestConsumedPagesDropped(t *testing.T) {
	f := newPagesFixture(t, ihOf(7))
	f.put(0)
	f.put(1)
	f.c.Consumed(f.ih, 0)
	f.c.Consumed(f.ih, 99) // not stored: nothing happens
	if a, b := f.cached(0), f.cached(1); a+b != 2*pagesPiece {
		t.Fatalf("right after the writes %d of %d bytes are cached", a+b, 2*pagesPiece)
	}
	// dropAfter newer bytes and a pass, then a piece every 50 ms (each
	// second one runs a pass), as the writeback of piece 0 may take a while.
	next := 2
	for ; next < 2+(dropAfter+passEvery)/pagesPiece; next++ {
		f.put(next)
	}
	for deadline := time.Now().Add(10 * time.Second); f.cached(0) > 0 && time.Now().Before(deadline); next++ {
		time.Sleep(50 * time.Millisecond)
		f.put(next)
	}
	t.Logf("after %d pieces written: piece 0 (consumed) has %d bytes cached, piece 1 (not read) %d", next, f.cached(0), f.cached(1))
	if got := f.cached(0); got != 0 {
		t.Errorf("the consumed piece still has %d bytes cached", got)
	}
	if got := f.cached(1); got != pagesPiece {
		t.Errorf("the piece nobody read has %d of %d bytes cached", got, pagesPiece)
	}
	f.readBack(2)
}

// TestIdleConsumedPagesDropped: a piece consumed once the writes have
// stopped (the whole file was had before its reader got there) leaves the
// page cache too, a second or so later, with no newer write to run a pass;
// a piece nobody read keeps its pages.
func TestIdleConsumedPagesDropped(t *testing.T) {
	f := newPagesFixture(t, ihOf(8))
	for p := range 3 {
		f.put(p)
	}
	time.Sleep(2 * settle) // nothing consumed yet: nothing goes
	if got := f.cached(0) + f.cached(1) + f.cached(2); got != 3*pagesPiece {
		t.Fatalf("%d of %d bytes cached before any piece was consumed", got, 3*pagesPiece)
	}
	f.c.Consumed(f.ih, 0)
	f.c.Consumed(f.ih, 2)
	deadline := time.Now().Add(5 * settle)
	for f.cached(0)+f.cached(2) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if a, b := f.cached(0), f.cached(2); a+b != 0 {
		t.Errorf("the consumed pieces still have %d and %d bytes cached %v after", a, b, 5*settle)
	}
	if got := f.cached(1); got != pagesPiece {
		t.Errorf("the piece nobody read has %d of %d bytes cached", got, pagesPiece)
	}
	f.readBack(3)
}

// TestAddJobMerges: the ranges of pieces written one after the other in a
// file become one call; a gap, another file or another kind of call starts
// a new one, as does a call that waits once it would pass waitJobMax.
func TestAddJobMerges(t *testing.T) {
	a, b := &dataFile{path: "a"}, &dataFile{path: "b"}
	var jobs []pageJob
	for _, j := range []pageJob{
		{d: a, off: 0, n: 10}, {d: a, off: 10, n: 10}, {d: a, off: 20, n: 5}, // one
		{d: a, off: 30, n: 10},             // a gap
		{d: b, off: 40, n: 10},             // another file
		{d: b, off: 50, n: 10, drop: true}, // a drop
		{d: b, off: 60, n: 10, drop: true},
		{d: b, off: 70, n: 10, drop: true, wait: true}, // a wait
		{d: b, off: 80, n: waitJobMax - 10, drop: true, wait: true},
		{d: b, off: 80 + waitJobMax - 10, n: 1, drop: true, wait: true}, // past waitJobMax
	} {
		jobs = addJob(jobs, j)
	}
	want := []pageJob{{d: a, off: 0, n: 25}, {d: a, off: 30, n: 10}, {d: b, off: 40, n: 10}, {d: b, off: 50, n: 20, drop: true},
		{d: b, off: 70, n: waitJobMax, drop: true, wait: true}, {d: b, off: 70 + waitJobMax, n: 1, drop: true, wait: true}}
	if !slices.Equal(jobs, want) {
		t.Errorf("got %+v, want %+v", jobs, want)
	}
}
