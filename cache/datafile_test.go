package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestSlotsGrow: a torrent's short last piece put first gets a small slot;
// its full pieces then go to a file of larger slots. Both files serve their
// pieces, across a restart too, and punching one piece's slot leaves its
// neighbours alone.
func TestSlotsGrow(t *testing.T) {
	dir := t.TempDir()
	ih := ihOf(4)
	const full, last = 256 << 10, 70000
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	want := map[int][]byte{9: mustPut(t, c, ih, 9, last)}
	for p := range 9 {
		want[p] = mustPut(t, c, ih, p, full)
	}
	names, _ := filepath.Glob(filepath.Join(dir, piecesDir, "*"))
	slices.Sort(names)
	if len(names) != 2 || !strings.HasSuffix(names[0], "-17") || !strings.HasSuffix(names[1], "-18") {
		t.Fatalf("piece files %v, want one of 128 KiB slots and one of 256 KiB", names)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	for p, w := range want {
		if got := readAll(t, c, ih, p, len(w)); !bytes.Equal(got, w) {
			t.Fatalf("piece %d differs after the restart", p)
		}
	}
	// The next full piece goes to the larger slots, not the first file.
	want[10] = mustPut(t, c, ih, 10, full)
	if info, err := os.Stat(names[0]); err != nil || info.Size() != 9<<17+last {
		t.Fatalf("the small slots' file grew: %v %v", info.Size(), err)
	}
	evictOnly(t, c, ih, 4)
	for _, p := range []int{3, 5} {
		if got := readAll(t, c, ih, p, full); !bytes.Equal(got, want[p]) {
			t.Fatalf("piece %d, a neighbour of an evicted one, differs", p)
		}
	}
}

// evictOnly evicts exactly one piece the way Put does.
func evictOnly(t *testing.T, c *Cache, ih InfoHash, piece int) {
	t.Helper()
	c.mu.Lock()
	e := c.lookupLocked(ih, uint32(piece))
	if e == nil || e.state != statePresent {
		c.mu.Unlock()
		t.Fatalf("piece %d not present", piece)
	}
	c.unlistLocked(e)
	e.state = stateEvicting
	c.mu.Unlock()
	if err := c.evict([]*entry{e}, true); err != nil {
		t.Fatal(err)
	}
	if c.Has(ih, piece) {
		t.Fatalf("piece %d still there", piece)
	}
}

// TestOrphanDataPunchedAtOpen: data a crash left without a record (a slot
// written but not recorded, a file of a torrent with no record at all) is
// given back at Open, and the recorded pieces are kept.
func TestOrphanDataPunchedAtOpen(t *testing.T) {
	dir := t.TempDir()
	ih := ihOf(5)
	const size = 64 << 10
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	want := [][]byte{mustPut(t, c, ih, 0, size), mustPut(t, c, ih, 1, size)}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A Put killed after its write: data in slots 2 and 7, no record.
	name := filepath.Join(dir, piecesDir, dataFileName(ih, shiftFor(size)))
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int64{2, 7} {
		if _, err := f.WriteAt(pieceData(ih, int(p), size), p*size); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	// A torrent whose every record is gone.
	stray := filepath.Join(dir, piecesDir, dataFileName(ihOf(6), 20))
	if err := os.WriteFile(stray, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// And something that is not ours: left alone.
	other := filepath.Join(dir, piecesDir, "README")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	c = openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	if got := pieceFilesUsage(t, dir) - 4096; got != 2*size { // less the README's block
		t.Errorf("piece files hold %d bytes, want the two pieces' %d", got, 2*size)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file without records is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file not ours was touched: %v", err)
	}
	if got := c.Pieces(ih); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("pieces %v", got)
	}
	for p, w := range want {
		if !bytes.Equal(readAll(t, c, ih, p, size), w) {
			t.Fatalf("piece %d differs", p)
		}
	}
}

// TestReadNeverSeesEvictedSlot: readers of verified pieces race writers that
// evict them and put other pieces, and the same ones again, into the same
// slots. Eviction waits for a slot's readers before punching it, so a read
// returns the piece's bytes or ErrNotFound, never zeros or another piece.
func TestReadNeverSeesEvictedSlot(t *testing.T) {
	const size = 32 << 10
	c := openT(t, Options{InMemory: true, Capacity: 4 * size})
	defer c.Close()
	ih := ihOf(8)
	data := func(p, gen int) []byte {
		d := pieceData(ih, p, size)
		d[0] = byte(gen%250 + 1) // a different piece each time it is put again
		return d
	}
	var gens [8]atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, misses atomic.Int64
	errc := make(chan error, 4)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := r.IntN(len(gens))
				// One writer per piece at a time: even pieces to writer
				// 0, odd to 1, so gens[p] names what is stored.
				if p%2 != w {
					continue
				}
				if c.Has(ih, p) {
					continue
				}
				g := int(gens[p].Add(1))
				if err := c.Put(ih, p, data(p, g)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for rd := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 4))
			buf := make([]byte, size)
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := r.IntN(len(gens))
				n, err := c.ReadAt(ih, p, buf, 0)
				if errors.Is(err, ErrNotFound) {
					misses.Add(1)
					continue
				}
				if err != nil || n != size {
					errc <- err
					return
				}
				// The generation byte may be any the piece had; the rest
				// must be the piece's.
				if g := buf[0]; g == 0 || !bytes.Equal(buf[1:], data(p, int(g))[1:]) {
					errc <- errors.New("a read returned bytes that are not the piece's")
					return
				}
				reads.Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	t.Logf("%d reads checked, %d found the piece evicted", reads.Load(), misses.Load())
	if reads.Load() < 100 {
		t.Errorf("only %d reads", reads.Load())
	}
}

// TestWriteFailsOnFullDisk: with the reserve out of the way, a Put whose
// pwrite meets a full file system fails with ErrDiskFull and leaves nothing
// behind, neither in the index nor on the disk; what was stored reads back.
func TestWriteFailsOnFullDisk(t *testing.T) {
	mnt := swarmtest.MountTmpfs(t, 160<<20) // badger's files, then about 150 pieces
	dir := filepath.Join(mnt, "cache")
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	c.guard.mu.Lock()
	c.guard.reserve = -1 << 40 // let every write through to the file system
	c.guard.mu.Unlock()
	ih := ihOf(9)
	const size = 1 << 20
	var stored int
	var err error
	for stored = 0; stored < 200; stored++ {
		if err = c.Put(ih, stored, pieceData(ih, stored, size)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after %d pieces: %v", stored, err)
	}
	t.Logf("after %d pieces: %v", stored, err)
	if c.Has(ih, stored) || c.Size() != int64(stored)*size {
		t.Fatalf("the failed Put left a trace: size %d", c.Size())
	}
	if got := pieceFilesUsage(t, dir); got != int64(stored)*size {
		t.Errorf("piece files hold %d bytes for %d pieces", got, stored)
	}
	for p := range stored {
		if !bytes.Equal(readAll(t, c, ih, p, size), pieceData(ih, p, size)) {
			t.Fatalf("piece %d differs", p)
		}
	}
}

// TestFormat1StoreUpgraded: a store an earlier swarmfs wrote (format 1:
// pieces in badger's value log) opens; its pieces are dropped, since they
// would be read where they are not, their space given back, and its
// metainfo and peer notes kept. New pieces then work, and the next Open finds
// format 2.
func TestFormat1StoreUpgraded(t *testing.T) {
	dir := t.TempDir()
	ih := ihOf(10)
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithValueLogFileSize(8 << 20))
	if err != nil {
		t.Fatal(err)
	}
	set := func(kvs ...[2][]byte) {
		t.Helper()
		err := db.Update(func(txn *badger.Txn) error {
			for _, kv := range kvs {
				if err := txn.Set(kv[0], kv[1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	set([2][]byte{formatKey, {1}},
		[2][]byte{metaKeyOf(ih), []byte("d4:infod4:name1:xee")},
		[2][]byte{peersKeyOf(ih), []byte("peers")})
	const pieces, size = 48, 1 << 20 // six value-log files
	for p := range pieces {
		d := pieceData(ih, p, size)
		old := record{size: size, sum: pieceSum(ih, uint32(p), d), seq: uint64(p)}.encode()
		old[0] = 1 // format 1's record: 21 bytes, no slot
		set([2][]byte{pieceKeyOf(kindPiece, ih, uint32(p)), d}, [2][]byte{pieceKeyOf(kindRecord, ih, uint32(p)), old[:21]})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := diskUsage(dir)
	var logged []string
	c, err := Open(Options{Dir: dir, Logf: func(f string, a ...any) {
		logged = append(logged, f)
		t.Logf(f, a...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Has(ih, 0) || c.countKeys(kindPiece) != 0 {
		t.Fatal("a piece of format 1 is still listed")
	}
	if m, err := c.Meta(ih); err != nil || string(m) != "d4:infod4:name1:xee" {
		t.Fatalf("metainfo: %q %v", m, err)
	}
	if p, err := c.Peers(ih); err != nil || string(p) != "peers" {
		t.Fatalf("peers: %q %v", p, err)
	}
	if !slices.ContainsFunc(logged, func(s string) bool { return strings.Contains(s, "earlier swarmfs") }) {
		t.Error("the upgrade was not logged")
	}
	// Open started the collection on its own.
	after := c.DiskUsage()
	for end := time.Now().Add(20 * time.Second); after > before/3 && time.Now().Before(end); after = c.DiskUsage() {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("disk use of the store: %s before the upgrade, %s after", formatSize(before), formatSize(after))
	if after > before/3 {
		t.Errorf("the dropped pieces' space was not given back: %s of %s", formatSize(after), formatSize(before))
	}
	d := mustPut(t, c, ih, 0, 64<<10)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, Options{Dir: dir})
	defer c.Close()
	if !bytes.Equal(readAll(t, c, ih, 0, len(d)), d) {
		t.Fatal("piece put after the upgrade differs")
	}
}
