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

// TestConsumedPagesDropped: a piece a reader has consumed leaves the page
// cache once enough newer pieces were written (its bytes were kept twice:
// in the piece file's pages and in the mount's), while a piece nobody read
// keeps its pages, and both still read back intact (from the disk).
func TestConsumedPagesDropped(t *testing.T) {
	dir := diskTempDir(t)
	const size = 1 << 20
	c := openT(t, Options{Dir: dir, Capacity: 256 << 20})
	defer c.Close()
	ih := ihOf(7)
	d := pieceData(ih, 0, size)
	put := func(p int) {
		d[0], d[1] = byte(p), byte(p>>8)
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	put(1)
	c.Consumed(ih, 0)
	c.Consumed(ih, 99) // not stored: nothing happens
	path := filepath.Join(dir, piecesDir, dataFileName(ih, shiftFor(size)))
	if got := resident(t, path, 0, 2*size); got != 2*size {
		t.Fatalf("right after the writes %d of %d bytes are cached", got, 2*size)
	}
	// dropAfter newer bytes and a pass, then a piece every 50 ms (each
	// second one runs a pass), as the writeback of piece 0 may take a while.
	next := 2
	for ; next < 2+(dropAfter+passEvery)/size; next++ {
		put(next)
	}
	for deadline := time.Now().Add(10 * time.Second); resident(t, path, 0, size) > 0 && time.Now().Before(deadline); next++ {
		time.Sleep(50 * time.Millisecond)
		put(next)
	}
	t.Logf("after %d pieces written: piece 0 (consumed) has %d bytes cached, piece 1 (not read) %d",
		next, resident(t, path, 0, size), resident(t, path, size, size))
	if got := resident(t, path, 0, size); got != 0 {
		t.Errorf("the consumed piece still has %d bytes cached", got)
	}
	if got := resident(t, path, size, size); got != size {
		t.Errorf("the piece nobody read has %d of %d bytes cached", got, size)
	}
	buf := make([]byte, size)
	for p := range 2 {
		d[0], d[1] = byte(p), byte(p>>8)
		if n, err := c.ReadAt(ih, p, buf, 0); err != nil || n != size || string(buf) != string(d) {
			t.Fatalf("piece %d: n=%d err=%v, or wrong bytes", p, n, err)
		}
	}
}

// TestIdleConsumedPagesDropped: a piece consumed once the writes have
// stopped (the whole file was had before its reader got there) leaves the
// page cache too, a second or so later, with no newer write to run a pass;
// a piece nobody read keeps its pages.
func TestIdleConsumedPagesDropped(t *testing.T) {
	dir := diskTempDir(t)
	const size = 1 << 20
	c := openT(t, Options{Dir: dir, Capacity: 64 << 20})
	defer c.Close()
	ih := ihOf(8)
	d := pieceData(ih, 0, size)
	for p := range 3 {
		d[0] = byte(p)
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, piecesDir, dataFileName(ih, shiftFor(size)))
	time.Sleep(2 * settle) // nothing consumed yet: nothing goes
	if got := resident(t, path, 0, 3*size); got != 3*size {
		t.Fatalf("%d of %d bytes cached before any piece was consumed", got, 3*size)
	}
	c.Consumed(ih, 0)
	c.Consumed(ih, 2)
	deadline := time.Now().Add(5 * settle)
	for (resident(t, path, 0, size) > 0 || resident(t, path, 2*size, size) > 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if a, b := resident(t, path, 0, size), resident(t, path, 2*size, size); a+b != 0 {
		t.Errorf("the consumed pieces still have %d and %d bytes cached %v after", a, b, 5*settle)
	}
	if got := resident(t, path, size, size); got != size {
		t.Errorf("the piece nobody read has %d of %d bytes cached", got, size)
	}
	buf := make([]byte, size)
	for p := range 3 {
		d[0] = byte(p)
		if n, err := c.ReadAt(ih, p, buf, 0); err != nil || n != size || string(buf) != string(d) {
			t.Fatalf("piece %d: n=%d err=%v, or wrong bytes", p, n, err)
		}
	}
}

// diskTempDir returns a test folder whose pages can be dropped (not on
// tmpfs).
func diskTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is on tmpfs, whose pages cannot be dropped: set TMPDIR to a folder on a disk", dir)
	}
	return dir
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
