package cache

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// TestDirectReads reads pieces of every storage kind (inline in the LSM tree,
// small and large in the value log) whole and in random ranges, in a fresh
// process (first reads verify through the mapping) and again (direct reads),
// and checks the bytes and that the direct path served the later reads.
func TestDirectReads(t *testing.T) {
	dir := t.TempDir()
	ih := ihOf(3)
	sizes := []int{100, valueThreshold, 16 << 10, 1 << 20, 1<<20 + 7}
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	for p, size := range sizes {
		mustPut(t, c, ih, p, size)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 2; round++ {
		for p, size := range sizes {
			want := pieceData(ih, p, size)
			if got := readAll(t, c, ih, p, size); !bytes.Equal(got, want) {
				t.Fatalf("round %d: piece %d (%d bytes) differs", round, p, size)
			}
			for i := 0; i < 20; i++ {
				off := r.IntN(size)
				buf := make([]byte, r.IntN(size-off)+1)
				n, err := c.ReadAt(ih, p, buf, int64(off))
				if n != len(buf) || (err != nil && off+n != size) || !bytes.Equal(buf[:n], want[off:off+n]) {
					t.Fatalf("piece %d [%d:+%d]: n=%d err=%v, bytes differ=%v", p, off, len(buf), n, err,
						!bytes.Equal(buf[:n], want[off:off+n]))
				}
			}
		}
	}
	if c.files.off.Load() {
		t.Fatal("direct reads switched themselves off")
	}
	// Inline pieces (100 bytes) never go direct; the others do once verified.
	if hits := c.files.hits.Load(); hits < int64(2*(len(sizes)-1)*20) {
		t.Fatalf("only %d reads were direct", hits)
	}
}

// TestDirectReadsAcrossGC moves pieces with value-log GC while they are read
// directly: reads stay right, and once GC has deleted a file no descriptor of
// ours keeps it (and its disk space) alive.
func TestDirectReadsAcrossGC(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 240 MiB")
	}
	dir := t.TempDir()
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	keep, drop := ihOf(1), ihOf(2)
	const size = 1 << 20
	// Interleave so that every value-log file is mostly garbage once drop goes.
	for p := 0; p < 192; p++ {
		mustPut(t, c, keep, p, size/4)
		mustPut(t, c, drop, p, size)
	}
	check := func(when string) {
		for p := 0; p < 192; p++ {
			if !bytes.Equal(readAll(t, c, keep, p, size/4), pieceData(keep, p, size/4)) {
				t.Fatalf("%s: piece %d differs", when, p)
			}
		}
	}
	check("before GC")
	before := c.files.hits.Load()
	if err := c.DropTorrent(drop); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.collect()
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check("during GC")
	}
	check("after GC")
	if c.files.hits.Load() == before {
		t.Fatal("no direct reads")
	}
	if open := deletedVlogs(t); len(open) > 0 {
		t.Fatalf("descriptors of deleted value-log files still open: %v", open)
	}
	if c.DiskUsage() > 192*size/4+c.margin() {
		t.Fatalf("disk use %s after GC", formatSize(c.DiskUsage()))
	}
}

// deletedVlogs lists this process's descriptors of deleted value-log files.
func deletedVlogs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var out []string
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.Contains(l, ".vlog") && strings.HasSuffix(l, "(deleted)") {
			out = append(out, l)
		}
	}
	return out
}

// TestDirectLayoutCheck: a value pointer that does not lead to the piece's
// entry (as after a badger upgrade that changed the layout) switches direct
// reads off instead of returning wrong bytes, and reads go on through the
// mapping.
func TestDirectLayoutCheck(t *testing.T) {
	c := openT(t, Options{Dir: t.TempDir(), Capacity: 1 << 30})
	defer c.Close()
	ih := ihOf(5)
	const size = 64 << 10
	mustPut(t, c, ih, 0, size)
	mustPut(t, c, ih, 1, size)
	key := pieceKeyOf(kindPiece, ih, 0)
	var vp valuePointer
	err := c.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		var ok bool
		if vp, ok = valuePointerOf(item); !ok {
			t.Fatal("no value pointer for a value-log piece")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := os.Open(filepath.Join(c.dir, "000001.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := checkEntry(fd, key, vp, size); err != nil {
		t.Fatalf("the right entry fails its check: %v", err)
	}
	other := pieceKeyOf(kindPiece, ih, 1)
	for _, bad := range []struct {
		key  []byte
		vp   valuePointer
		size int64
	}{
		{other, vp, size},
		{key, vp, size - 1},
		{key, valuePointer{vp.fid, vp.len, vp.offset + 1}, size},
		{key, valuePointer{vp.fid, vp.len + 1, vp.offset}, size},
	} {
		if err := checkEntry(fd, bad.key, bad.vp, bad.size); err == nil {
			t.Fatalf("entry check passed for %+v", bad)
		}
	}
	// Through the cache: a wrong pointer on a file not yet open turns direct
	// reads off, and ReadAt still returns the right bytes.
	c.files.invalidate()
	if c.files.read(other, vp, size, make([]byte, 10), 0) {
		t.Fatal("read through a pointer to another piece succeeded")
	}
	if !c.files.off.Load() {
		t.Fatal("direct reads still on after a failed check")
	}
	hits := c.files.hits.Load()
	if !bytes.Equal(readAll(t, c, ih, 1, size), pieceData(ih, 1, size)) {
		t.Fatal("piece differs after direct reads went off")
	}
	if c.files.hits.Load() != hits {
		t.Fatal("a direct read happened after they were switched off")
	}
}
