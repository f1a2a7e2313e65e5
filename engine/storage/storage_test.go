package storage

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// testTorrent makes data and its info: three files, one empty, pieces that
// straddle file boundaries.
func testTorrent(t *testing.T) (*metainfo.Info, metainfo.Hash, []byte, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "t")
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	a := bytes.Repeat([]byte("abcdefg"), 10000) // 70000
	b := bytes.Repeat([]byte{0, 1, 2}, 20001)   // 60003
	os.WriteFile(filepath.Join(root, "a"), a, 0o644)
	os.WriteFile(filepath.Join(root, "sub", "b"), b, 0o644)
	os.WriteFile(filepath.Join(root, "sub", "empty"), nil, 0o644)
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 16 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, f := range mi.Info.Files {
		d, _ := os.ReadFile(filepath.Join(append([]string{root}, f.Path...)...))
		all = append(all, d...)
	}
	return mi.Info, mi.InfoHash, all, dir
}

func piece(info *metainfo.Info, all []byte, i int) []byte {
	off := info.PieceOffset(i)
	return all[off : off+info.PieceLen(i)]
}

func checkStore(t *testing.T, p Provider, info *metainfo.Info, ih metainfo.Hash, all []byte) {
	t.Helper()
	st, have, err := p.Open(ih, info)
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 0 {
		t.Fatalf("fresh store has %v", have)
	}
	buf := make([]byte, 100)
	if _, err := st.ReadAt(buf, 0); !errors.Is(err, ErrNotStored) {
		t.Fatalf("read of a missing piece: %v", err)
	}
	for i := 0; i < info.NumPieces(); i++ {
		if err := st.WritePiece(i, piece(info, all, i)); err != nil {
			t.Fatal(err)
		}
	}
	// Reads across piece and file boundaries.
	for _, r := range [][2]int64{{0, 10}, {16380, 10}, {69990, 20}, {0, int64(len(all))}, {int64(len(all)) - 7, 7}} {
		got := make([]byte, r[1])
		if _, err := st.ReadAt(got, r[0]); err != nil {
			t.Fatalf("ReadAt(%d,%d): %v", r[0], r[1], err)
		}
		if !bytes.Equal(got, all[r[0]:r[0]+r[1]]) {
			t.Fatalf("ReadAt(%d,%d) differs", r[0], r[1])
		}
	}
	st.Close()
	// Reopened, every piece is there and good.
	st, have, err = p.Open(ih, info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(have) != info.NumPieces() {
		t.Fatalf("reopened store has %d of %d pieces", len(have), info.NumPieces())
	}
	for _, i := range have {
		got := make([]byte, info.PieceLen(i))
		st.ReadAt(got, info.PieceOffset(i))
		if sha1.Sum(got) != info.PieceHash(i) {
			t.Fatalf("piece %d does not verify", i)
		}
	}
}

func TestMemory(t *testing.T) {
	info, ih, all, _ := testTorrent(t)
	checkStore(t, &Memory{}, info, ih, all)
}

func TestFile(t *testing.T) {
	info, ih, all, _ := testTorrent(t)
	dir := t.TempDir()
	checkStore(t, File{Dir: dir}, info, ih, all)
	if st, err := os.Stat(filepath.Join(dir, "t", "sub", "empty")); err != nil || st.Size() != 0 {
		t.Fatalf("empty file: %v", err)
	}
}

// TestFileSeedsExisting: pointing File at finished data finds every piece,
// and a corrupted byte costs exactly the pieces it touches.
func TestFileSeedsExisting(t *testing.T) {
	info, ih, _, dir := testTorrent(t)
	_, have, err := File{Dir: dir}.Open(ih, info)
	if err != nil || len(have) != info.NumPieces() {
		t.Fatalf("have %d of %d: %v", len(have), info.NumPieces(), err)
	}
	f, _ := os.OpenFile(filepath.Join(dir, "t", "a"), os.O_RDWR, 0)
	f.WriteAt([]byte{'X'}, 20000) // piece 1
	f.Close()
	_, have, _ = File{Dir: dir}.Open(ih, info)
	if len(have) != info.NumPieces()-1 {
		t.Fatalf("after corruption have %d, want %d", len(have), info.NumPieces()-1)
	}
	for _, p := range have {
		if p == 1 {
			t.Fatal("corrupt piece 1 reported as good")
		}
	}
}

func TestCache(t *testing.T) {
	info, ih, all, _ := testTorrent(t)
	c, err := cache.Open(cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkStore(t, NewCache(c), info, ih, all)
}

// TestFileManyFiles: more files than the open-handle bound, read
// concurrently, never lose a handle someone is using.
func TestFileManyFiles(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "many")
	os.MkdirAll(root, 0o755)
	n := maxOpenFiles*2 + 10
	for i := 0; i < n; i++ {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("f%04d", i)), bytes.Repeat([]byte{byte(i)}, 3000+i), 0o644)
	}
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 16 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		st, have, err := File{Dir: dir}.Open(mi.InfoHash, mi.Info)
		if err != nil {
			t.Fatal(err)
		}
		if len(have) != mi.Info.NumPieces() {
			t.Fatalf("round %d: have %d of %d pieces", round, len(have), mi.Info.NumPieces())
		}
		// Concurrent reads spread over every file keep the handle cache
		// churning; none may fail.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				buf := make([]byte, 100)
				for k := 0; k < 3000; k++ {
					f := mi.Info.Files[(g*7919+k*31)%len(mi.Info.Files)]
					if _, err := st.ReadAt(buf, f.Offset); err != nil {
						errs <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: concurrent read: %v", round, err)
		}
		st.Close()
	}
}
