package cache

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDiskFollowsEviction writes four times the capacity and checks that
// disk use stays at the capacity plus badger's own files all along (an
// evicted piece's blocks are freed at once, by a punched hole), that what is
// stored reads back intact, and that dropping the torrent removes its files.
func TestDiskFollowsEviction(t *testing.T) {
	dir := t.TempDir()
	const capacity = 64 << 20
	const size = 1 << 20
	c := openT(t, Options{Dir: dir, Capacity: capacity})
	defer c.Close()
	ih := ihOf(1)
	d := pieceData(ih, 0, size)
	peak := int64(0)
	for p := 0; p < 4*capacity/size; p++ {
		d[0], d[1] = byte(p), byte(p>>8)
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
		if p%16 == 0 {
			peak = max(peak, c.DiskUsage())
		}
	}
	files := pieceFilesUsage(t, dir)
	t.Logf("capacity %s, stored %s; piece files %s; disk use at most %s, at the end %s",
		formatSize(capacity), formatSize(c.Size()), formatSize(files), formatSize(peak), formatSize(c.DiskUsage()))
	// The file system's own blocks count too: ext4 gives a file whose
	// blocks lie in more than four runs (pieces written back at different
	// times among other files' writes, holes punched between them) a 4 KiB
	// block of its extent tree. An evicted piece left unpunched is 1 MiB.
	if files < c.Size() || files > c.Size()+extentSlack || c.DiskUsage() < files {
		t.Errorf("piece files hold %s (%d bytes) for %s (%d) stored; DiskUsage says %s",
			formatSize(files), files, formatSize(c.Size()), c.Size(), formatSize(c.DiskUsage()))
	}
	if limit := int64(capacity + 16<<20); peak > limit {
		t.Errorf("disk use %s exceeds capacity + badger's files = %s", formatSize(peak), formatSize(limit))
	}
	buf := make([]byte, size)
	for _, p := range c.Pieces(ih) {
		d[0], d[1] = byte(p), byte(p>>8)
		if n, err := c.ReadAt(ih, p, buf, 0); err != nil || n != size || !bytes.Equal(buf, d) {
			t.Fatalf("piece %d: n=%d err=%v", p, n, err)
		}
	}
	if err := c.DropTorrent(ih); err != nil {
		t.Fatal(err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, piecesDir, "*")); len(names) > 0 {
		t.Errorf("after DropTorrent: %v", names)
	}
	t.Logf("after DropTorrent: %s", formatSize(c.DiskUsage()))
}

// extentSlack is what a piece file may hold beyond its pieces' bytes: its
// extent tree's blocks.
const extentSlack = 64 << 10

// TestCorruptPieceDropped damages a piece on disk: its first read after the
// restart fails a check, returns ErrNotFound, drops the piece and tells
// OnEvict; other pieces are untouched. A flipped byte is caught by the
// checksum; a file truncated into a piece's slot already by Open, which
// then does not list the piece.
func TestCorruptPieceDropped(t *testing.T) {
	tests := []struct {
		name   string
		reason string // "": Open drops the piece
		damage func(t *testing.T, f *os.File, off int64)
	}{
		{"flipped byte", "checksum", func(t *testing.T, f *os.File, off int64) {
			b := make([]byte, 1)
			f.ReadAt(b, off+1000)
			if _, err := f.WriteAt([]byte{b[0] ^ 0xff}, off+1000); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated file", "", func(t *testing.T, f *os.File, off int64) {
			if err := f.Truncate(off + 1000); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ih := ihOf(7)
			const size = 64 << 10
			c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
			for p := 0; p < 3; p++ {
				mustPut(t, c, ih, p, size)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			victim := 2 // the last piece: truncating its file leaves the others
			f, err := os.OpenFile(filepath.Join(dir, piecesDir, dataFileName(ih, shiftFor(size))), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, f, int64(victim)*size)
			f.Close()

			c = openT(t, Options{Dir: dir, Capacity: 1 << 30})
			defer c.Close()
			var evicted []int
			c.OnEvict(func(_ InfoHash, p int) { evicted = append(evicted, p) })
			if tt.reason == "" {
				if c.Has(ih, victim) || !slices.Equal(c.Pieces(ih), []int{0, 1}) {
					t.Fatalf("after Open: pieces %v", c.Pieces(ih))
				}
			} else {
				if !c.Has(ih, victim) {
					t.Fatal("index lost the piece (it is rebuilt without reading data)")
				}
				_, err = c.ReadAt(ih, victim, make([]byte, 10), 0)
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("ReadAt of damaged piece: %v", err)
				}
				t.Logf("damaged piece: %v", err)
				if c.Has(ih, victim) || !slices.Equal(evicted, []int{victim}) {
					t.Fatalf("damaged piece still indexed (evicted %v)", evicted)
				}
			}
			for _, p := range []int{0, 1} {
				if !bytes.Equal(readAll(t, c, ih, p, size), pieceData(ih, p, size)) {
					t.Fatalf("piece %d differs", p)
				}
			}
			// Download it again: stored and readable.
			d := mustPut(t, c, ih, victim, size)
			if !bytes.Equal(readAll(t, c, ih, victim, size), d) {
				t.Fatal("re-put piece differs")
			}
		})
	}
}

// TestPutOverUnverified puts a piece that a restart left unverified: the
// stored copy is replaced (it might be the damaged one), not trusted.
func TestPutOverUnverified(t *testing.T) {
	dir := t.TempDir()
	ih := ihOf(8)
	c := openT(t, Options{Dir: dir})
	mustPut(t, c, ih, 0, 50<<10)
	c.Close()
	c = openT(t, Options{Dir: dir})
	defer c.Close()
	c.Pin(ih, 0)
	d := mustPut(t, c, ih, 0, 50<<10)
	if c.Size() != 50<<10 || !bytes.Equal(readAll(t, c, ih, 0, len(d)), d) {
		t.Fatalf("after replacing: size %d", c.Size())
	}
	c.Unpin(ih, 0)
}

// TestDiskAlmostFull makes the free-space guard trip (by asking for an
// impossible reserve): Put and PutMeta fail with ErrFull and a message about
// the disk, nothing is half-written, and writes work again once space is back.
func TestDiskAlmostFull(t *testing.T) {
	dir := t.TempDir()
	ih := ihOf(3)
	c := openT(t, Options{Dir: dir})
	defer c.Close()
	d := mustPut(t, c, ih, 0, 32<<10)

	c.guard.mu.Lock()
	saved := c.guard.reserve
	c.guard.reserve = 1 << 62
	c.guard.when = time.Time{}
	c.guard.mu.Unlock()
	err := c.Put(ih, 1, pieceData(ih, 1, 32<<10))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "disk") {
		t.Fatalf("Put on a full disk: %v", err)
	}
	t.Logf("full disk: %v", err)
	if err := c.PutMeta(ih, []byte("meta")); !errors.Is(err, ErrFull) {
		t.Fatalf("PutMeta on a full disk: %v", err)
	}
	if c.Has(ih, 1) || c.Size() != int64(len(d)) {
		t.Fatalf("failed Put left a trace: size %d", c.Size())
	}

	c.guard.mu.Lock()
	c.guard.reserve = saved
	c.guard.when = time.Time{}
	c.guard.mu.Unlock()
	mustPut(t, c, ih, 1, 32<<10)
	if !bytes.Equal(readAll(t, c, ih, 0, len(d)), d) {
		t.Fatal("piece 0 differs")
	}
}
