package cache

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks on 1 MiB pieces against a store on real disk (b.TempDir, not
// InMemory), each paired with a plain file on the same disk written with
// WriteAt and read with pread (os.File.ReadAt): the ceiling. Reads are of
// warm data (page cache), as a cached re-read through the mount would be.
//
//	go test -run '^$' -bench . -benchtime 2s ./cache

const (
	benchPiece  = 1 << 20
	benchPieces = 256 // 256 MiB of stored data for the read benchmarks
)

func benchCache(b *testing.B, capacity int64) *Cache {
	b.Helper()
	c, err := Open(Options{Dir: b.TempDir(), Capacity: capacity, Logf: quiet(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// filled returns a cache of the default capacity (as a mount opens it)
// holding benchPieces pieces, each read once (so first-read verification is
// not measured).
func filled(b *testing.B) *Cache {
	c := benchCache(b, DefaultCapacity)
	ih := ihOf(1)
	d := pieceData(ih, 0, benchPiece)
	for p := 0; p < benchPieces; p++ {
		if err := c.Put(ih, p, d); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, benchPiece)
	for p := 0; p < benchPieces; p++ {
		if _, err := c.ReadAt(ih, p, buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

func plainFile(b *testing.B) *os.File {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "plain"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

func filledPlain(b *testing.B) *os.File {
	f := plainFile(b)
	d := pieceData(ihOf(1), 0, benchPiece)
	for p := 0; p < benchPieces; p++ {
		if _, err := f.WriteAt(d, int64(p)*benchPiece); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, benchPiece)
	for p := 0; p < benchPieces; p++ {
		f.ReadAt(buf, int64(p)*benchPiece)
	}
	return f
}

// BenchmarkPut writes 1 MiB pieces; past 1 GiB every Put also evicts (a
// punched hole), as in a long download.
func BenchmarkPut(b *testing.B) {
	c := benchCache(b, 1<<30)
	ih := ihOf(1)
	d := pieceData(ih, 0, benchPiece)
	b.SetBytes(benchPiece)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Put(ih, i, d); err != nil {
			b.Fatal(err)
		}
	}
}

// plainWrap bounds the plain files written by the Put ceilings.
const plainWrap = 2 << 30

// BenchmarkPlainFilePut appends 1 MiB blocks to a file, as the cache writes
// new data (wrapping at 2 GiB to bound the disk used): the page cache absorbs
// it until the kernel's dirty limits throttle the writer to the disk's speed.
func BenchmarkPlainFilePut(b *testing.B) {
	f := plainFile(b)
	d := pieceData(ihOf(1), 0, benchPiece)
	b.SetBytes(benchPiece)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(d, int64(i)*benchPiece%plainWrap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadPiece reads whole random pieces of a 256 MiB working set, the
// way ReadAt serves verified pieces: with pread from their piece file.
func BenchmarkReadPiece(b *testing.B) {
	c := filled(b)
	ih := ihOf(1)
	buf := make([]byte, benchPiece)
	r := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(benchPiece)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.ReadAt(ih, r.IntN(benchPieces), buf, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainFileReadPiece(b *testing.B) {
	f := filledPlain(b)
	buf := make([]byte, benchPiece)
	r := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(benchPiece)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.ReadAt(buf, int64(r.IntN(benchPieces))*benchPiece); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead4K reads 4 KiB at random aligned offsets of random pieces:
// ns/op is the latency of a small random read.
func BenchmarkRead4K(b *testing.B) {
	c := filled(b)
	ih := ihOf(1)
	buf := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := int64(r.IntN(benchPiece/4096)) * 4096
		if _, err := c.ReadAt(ih, r.IntN(benchPieces), buf, off); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainFileRead4K(b *testing.B) {
	f := filledPlain(b)
	buf := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := int64(r.IntN(benchPieces))*benchPiece + int64(r.IntN(benchPiece/4096))*4096
		if _, err := f.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead4KParallel is BenchmarkRead4K from GOMAXPROCS goroutines: it
// shows what the index lock and the piece files' descriptors cost under contention.
func BenchmarkRead4KParallel(b *testing.B) {
	c := filled(b)
	ih := ihOf(1)
	b.SetBytes(4096)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		r := rand.New(rand.NewPCG(rand.Uint64(), 2))
		for pb.Next() {
			off := int64(r.IntN(benchPiece/4096)) * 4096
			if _, err := c.ReadAt(ih, r.IntN(benchPieces), buf, off); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPlainFileRead4KParallel(b *testing.B) {
	f := filledPlain(b)
	b.SetBytes(4096)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		r := rand.New(rand.NewPCG(rand.Uint64(), 2))
		for pb.Next() {
			off := int64(r.IntN(benchPieces))*benchPiece + int64(r.IntN(benchPiece/4096))*4096
			if _, err := f.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	})
}
