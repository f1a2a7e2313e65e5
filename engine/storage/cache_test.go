package storage

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// fakeInfo is the info of a torrent of n pieces of pieceLen bytes whose
// data is never needed (hashes are zero).
func fakeInfo(name string, n int, pieceLen int64) *metainfo.Info {
	total := int64(n) * pieceLen
	return &metainfo.Info{
		Name:        name,
		PieceLength: pieceLen,
		Pieces:      make([]byte, n*sha1.Size),
		Files:       []metainfo.File{{Path: []string{name}, Length: total}},
		TotalLength: total,
		SingleFile:  true,
	}
}

func openCache(t *testing.T, capacity int64) *cache.Cache {
	t.Helper()
	c, err := cache.Open(cache.Options{InMemory: true, Capacity: capacity, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCacheRefusesPiecesItCannotHold: a torrent whose pieces the cache
// could never keep is refused when opened, with an error that says so and
// reads as ENOSPC, instead of being fetched and refused for ever.
func TestCacheRefusesPiecesItCannotHold(t *testing.T) {
	big := NewCache(openCache(t, 10<<30)) // takes pieces up to 1 GiB
	small := NewCache(openCache(t, 1<<20))
	for _, tc := range []struct {
		name string
		p    *Cache
		info *metainfo.Info
		ok   bool
	}{
		{"256 MiB pieces, the largest a torrent may have", big, fakeInfo("huge", 2, 256<<20), true},
		{"two pieces over the capacity", small, fakeInfo("two", 4, 1<<20), false},
		{"one piece the size of the capacity", small, fakeInfo("one", 1, 1<<20), true},
		{"pieces of half the capacity", small, fakeInfo("halves", 8, 512<<10), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ih metainfo.Hash
			copy(ih[:], tc.info.Name)
			st, _, err := tc.p.Open(ih, tc.info)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				st.Close()
				return
			}
			if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "MiB") {
				t.Fatalf("Open: %v", err)
			}
			t.Log(err)
		})
	}
}

// TestCacheEvictionsBeforeOnEvict: pieces evicted after Open listed them
// but before the engine registered for evictions are reported when it does.
// They were lost unheard, leaving have-bits for pieces that were gone.
func TestCacheEvictionsBeforeOnEvict(t *testing.T) {
	const pieceLen = 64 << 10
	ca := openCache(t, 4*pieceLen)
	p := NewCache(ca)
	info := fakeInfo("a", 4, pieceLen)
	ih := metainfo.Hash{1}
	for i := range 4 {
		if err := ca.Put(ih, i, bytes.Repeat([]byte{byte(i)}, pieceLen)); err != nil {
			t.Fatal(err)
		}
	}
	st, have, err := p.Open(ih, info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(have) != 4 {
		t.Fatalf("Open listed %v", have)
	}
	// Another torrent's pieces push two of ours out.
	for i := range 2 {
		if err := ca.Put(metainfo.Hash{2}, i, make([]byte, pieceLen)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var heard []int
	st.(Evicter).OnEvict(func(piece int) {
		mu.Lock()
		heard = append(heard, piece)
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(heard)
	if !slices.Equal(heard, []int{0, 1}) {
		t.Fatalf("heard of evictions %v, want [0 1]", heard)
	}
	for i := range 4 {
		if got, want := st.(Evicter).Has(i), i >= 2; got != want {
			t.Errorf("Has(%d) = %v", i, got)
		}
	}
}

// TestCacheWriteRefusals: WritePiece tells a refusal that lasts (ErrNoSpace)
// from a cache full of pinned pieces (ErrFull), and Room says the same
// before a piece is fetched.
func TestCacheWriteRefusals(t *testing.T) {
	const pieceLen = 64 << 10
	ca := openCache(t, 2*pieceLen)
	p := NewCache(ca)
	info := fakeInfo("a", 4, pieceLen)
	st, _, err := p.Open(metainfo.Hash{3}, info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sp := st.(Space)
	if err := sp.Room(pieceLen); err != nil {
		t.Fatalf("Room in an empty cache: %v", err)
	}
	if f := sp.Free(); f != 2*pieceLen {
		t.Fatalf("Free = %d", f)
	}
	st.(Pinner).Pin(0)
	st.(Pinner).Pin(1)
	for i := range 2 {
		if err := st.WritePiece(i, make([]byte, pieceLen)); err != nil {
			t.Fatal(err)
		}
	}
	err = st.WritePiece(2, make([]byte, pieceLen))
	if !errors.Is(err, ErrFull) || errors.Is(err, ErrNoSpace) {
		t.Fatalf("WritePiece into a cache of pinned pieces: %v", err)
	}
	if err := sp.Room(pieceLen); !errors.Is(err, ErrFull) {
		t.Fatalf("Room in a cache of pinned pieces: %v", err)
	}
	st.(Pinner).Unpin(0)
	if err := sp.Room(pieceLen); err != nil {
		t.Fatalf("Room once a pin went: %v", err)
	}
	if err := st.WritePiece(3, make([]byte, 3*pieceLen)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("WritePiece of a piece larger than the cache: %v", err)
	}
}

// TestCacheReopenKeepsHook: closing a torrent's old store after the same
// torrent was opened again must not silence the new one's evictions.
func TestCacheReopenKeepsHook(t *testing.T) {
	const pieceLen = 64 << 10
	ca := openCache(t, 2*pieceLen)
	p := NewCache(ca)
	info := fakeInfo("a", 2, pieceLen)
	ih := metainfo.Hash{4}
	old, _, err := p.Open(ih, info)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := p.Open(ih, info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	heard := make(chan int, 4)
	st.(Evicter).OnEvict(func(piece int) { heard <- piece })
	old.Close()
	for i := range 2 {
		if err := st.WritePiece(i, make([]byte, pieceLen)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ca.Put(metainfo.Hash{5}, 0, make([]byte, pieceLen)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-heard:
		if p != 0 {
			t.Fatalf("heard of piece %d evicted, want 0", p)
		}
	default:
		t.Fatal("the eviction went unheard")
	}
}
