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

// TestValueLogShrinks writes four times the capacity and checks that disk use
// comes back to the capacity plus the documented margin, and that dropping
// everything gives the space back.
func TestValueLogShrinks(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 512 MiB")
	}
	dir := t.TempDir()
	const capacity = 128 << 20
	const size = 1 << 20
	c := openT(t, Options{Dir: dir, Capacity: capacity})
	defer c.Close()
	ih := ihOf(1)
	d := pieceData(ih, 0, size)
	for p := 0; p < 4*capacity/size; p++ {
		d[0], d[1] = byte(p), byte(p>>8)
		if err := c.Put(ih, p, d); err != nil {
			t.Fatal(err)
		}
	}
	before := c.DiskUsage()
	c.collect()
	after := c.DiskUsage()
	limit := capacity + c.margin()
	t.Logf("capacity %s, stored %s; disk before collect %s, after %s (limit %s, value-log file %s)",
		formatSize(capacity), formatSize(c.Size()), formatSize(before), formatSize(after),
		formatSize(limit), formatSize(c.vlogSize))
	if after > limit {
		t.Errorf("disk use %s exceeds capacity + margin = %s", formatSize(after), formatSize(limit))
	}
	// What the GC moved (and what was written into preallocated files)
	// reads back intact.
	buf := make([]byte, size)
	for _, p := range c.Pieces(ih) {
		d[0], d[1] = byte(p), byte(p>>8)
		if n, err := c.ReadAt(ih, p, buf, 0); err != nil || n != size || !bytes.Equal(buf, d) {
			t.Fatalf("piece %d after GC: n=%d err=%v", p, n, err)
		}
	}
	if err := c.DropTorrent(ih); err != nil {
		t.Fatal(err)
	}
	c.collect()
	empty := c.DiskUsage()
	t.Logf("after DropTorrent and collect: %s", formatSize(empty))
	if empty > c.vlogSize+32<<20 {
		t.Errorf("disk use after dropping everything: %s", formatSize(empty))
	}
}

// TestCorruptPieceDropped damages a piece on disk: its first read after the
// restart fails a check, returns ErrNotFound, drops the piece and tells
// OnEvict; other pieces are untouched. Two cases: damage in an older
// value-log file is caught by our checksum alone (badger does not check
// values on read); damage in the newest file is caught by badger when it
// reopens the file and truncates it at the first bad entry, and the read
// fails its size check.
func TestCorruptPieceDropped(t *testing.T) {
	tests := []struct {
		name    string
		filler  int // MiB written after the damaged piece, to rotate the value log
		reason  string
		filling bool
	}{
		{"older value-log file", 65, "checksum", true},
		{"newest value-log file", 0, "check", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && tt.filler > 0 {
				t.Skip("writes 65 MiB")
			}
			dir := t.TempDir()
			ih, other := ihOf(7), ihOf(8)
			const size = 64 << 10
			c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
			for p := 0; p < 3; p++ {
				mustPut(t, c, ih, p, size)
			}
			for p := 0; p < tt.filler; p++ {
				mustPut(t, c, other, p, 1<<20)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			victim := 2 // the last piece written before the filler
			damage(t, dir, pieceData(ih, victim, size)[size/2:size/2+64])

			c = openT(t, Options{Dir: dir, Capacity: 1 << 30})
			defer c.Close()
			var evicted []int
			c.OnEvict(func(_ InfoHash, p int) { evicted = append(evicted, p) })
			if !c.Has(ih, victim) {
				t.Fatal("index lost the piece (it is rebuilt without reading data)")
			}
			_, err := c.ReadAt(ih, victim, make([]byte, 10), 0)
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("ReadAt of damaged piece: %v", err)
			}
			t.Logf("damaged piece: %v", err)
			if c.Has(ih, victim) || !slices.Equal(evicted, []int{victim}) {
				t.Fatalf("damaged piece still indexed (evicted %v)", evicted)
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

// damage flips one byte of the value-log copy of probe.
func damage(t *testing.T, dir string, probe []byte) {
	t.Helper()
	vlogs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	for _, name := range vlogs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, probe); i >= 0 {
			f, err := os.OpenFile(name, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{b[i] ^ 0xff}, int64(i)); err != nil {
				t.Fatal(err)
			}
			t.Logf("damaged %s at %d", filepath.Base(name), i)
			return
		}
	}
	t.Fatal("piece data not found in the value log")
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
