package cache

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestReopenOnFullDisk: a cache filled its disk up to the reserve (Puts
// were refused with ErrDiskFull) and was closed; reopened on that disk, it
// serves every piece it holds and refuses new ones, rather than refusing to
// open for a reserve it can never get back. With no byte left it refuses to
// open, with a clear error. Once space frees, Puts work again.
func TestReopenOnFullDisk(t *testing.T) {
	mnt := swarmtest.MountTmpfs(t, 256<<20)
	dir := filepath.Join(mnt, "cache")
	ih := ihOf(7)
	const pieceLen = 1 << 20

	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	t.Cleanup(func() {
		if c != nil {
			c.Close()
		}
	})
	var stored int
	for i := 0; ; i++ {
		err := c.Put(ih, i, pieceData(ih, i, pieceLen))
		if err == nil {
			stored++
			continue
		}
		if !errors.Is(err, ErrDiskFull) || !errors.Is(err, ErrFull) {
			t.Fatalf("put %d on a filling disk: %v", i, err)
		}
		t.Logf("after %d pieces: %v", stored, err)
		break
	}
	if stored == 0 {
		t.Fatal("the tmpfs took no piece at all")
	}
	if err := c.Room(pieceLen); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Room on a full disk: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close gave back the preallocated tail of the value log: take it, as
	// anything else writing to the disk would.
	swarmtest.FillDisk(t, mnt, c.guard.reserve/2)

	check := func(c *Cache) {
		t.Helper()
		for i := range stored {
			want := pieceData(ih, i, pieceLen)
			if !bytes.Equal(readAll(t, c, ih, i, pieceLen), want) {
				t.Fatalf("piece %d differs", i)
			}
		}
		if err := c.Put(ih, stored, pieceData(ih, stored, pieceLen)); !errors.Is(err, ErrDiskFull) {
			t.Fatalf("put on a full disk: %v", err)
		}
		if c.Has(ih, stored) {
			t.Fatal("a refused put left its piece")
		}
	}
	reopen := func(what string) {
		t.Helper()
		var err error
		c, err = Open(Options{Dir: dir, Capacity: 1 << 30, Logf: t.Logf})
		if err != nil {
			t.Fatalf("reopen %s: %v", what, err)
		}
	}
	reopen("on the disk it filled")
	check(c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// With (almost) no byte left, badger could not even open: a clear
	// error, not SIGBUS.
	swarmtest.FillDisk(t, mnt, 0)
	if _, err := Open(Options{Dir: dir, Capacity: 1 << 30, Logf: t.Logf}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("open on a disk with no byte free: %v", err)
	}
	// Space comes back: writes work again.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	reopen("once space is back")
	if err := c.DropTorrent(ih); err != nil {
		t.Fatal(err)
	}
	c.collect()
	if err := c.Put(ih, 0, pieceData(ih, 0, pieceLen)); err != nil {
		t.Fatalf("put once space is back: %v", err)
	}
}

// TestNewStoreOnFullDisk: a store that does not exist yet is still refused
// on a disk inside the reserve (creating it would write), with a clear error.
func TestNewStoreOnFullDisk(t *testing.T) {
	mnt := swarmtest.MountTmpfs(t, 64<<20)
	_, err := Open(Options{Dir: filepath.Join(mnt, "cache"), Capacity: 1 << 30, Logf: t.Logf})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("open a new store on a small disk: %v", err)
	}
}

// TestRefusedPutEvictsNothing: a Put refused for a full disk leaves every
// stored piece in place (it evicted the least recently used ones first,
// for nothing: deleting gives no disk space back until value-log GC), and
// Room and Free say why a Put would fail before anyone fetches a piece.
func TestRefusedPutEvictsNothing(t *testing.T) {
	const pieceLen = 64 << 10
	ih := ihOf(9)
	c := openT(t, Options{InMemory: true, Capacity: 2 * pieceLen})
	defer c.Close()
	if got := c.MaxPiece(); got != 2*pieceLen {
		t.Errorf("MaxPiece = %d, want the capacity %d", got, 2*pieceLen)
	}
	if err := c.Room(3 * pieceLen); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Room for a piece larger than the cache: %v", err)
	}
	if err := c.Put(ih, 9, make([]byte, 3*pieceLen)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Put of a piece larger than the cache: %v", err)
	}
	mustPut(t, c, ih, 0, pieceLen)
	mustPut(t, c, ih, 1, pieceLen)
	if f := c.Free(); f != 0 {
		t.Errorf("Free of a full cache = %d", f)
	}
	if err := c.Room(pieceLen); err != nil {
		t.Errorf("Room with evictable pieces: %v", err)
	}
	c.Pin(ih, 0)
	c.Pin(ih, 1)
	if err := c.Room(pieceLen); !errors.Is(err, ErrFull) || errors.Is(err, ErrDiskFull) {
		t.Errorf("Room with every piece pinned: %v", err)
	}
	c.Unpin(ih, 0)
	c.Unpin(ih, 1)

	c.guard.mu.Lock()
	c.guard.reserve = 1 << 62
	c.guard.when = time.Time{}
	c.guard.mu.Unlock()
	if err := c.Room(pieceLen); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Room on a full disk: %v", err)
	}
	if err := c.Put(ih, 2, pieceData(ih, 2, pieceLen)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Put on a full disk: %v", err)
	}
	if !c.Has(ih, 0) || !c.Has(ih, 1) || c.Has(ih, 2) {
		t.Fatalf("a Put refused for a full disk changed the cache: pieces %v", c.Pieces(ih))
	}
}
