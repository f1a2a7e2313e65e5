package fs

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCachedRead reads a 256 MiB file whose pieces are all there,
// sequentially in 1 MiB reads, through the mount. page-cache re-reads it from
// the kernel's page cache (FOPEN_KEEP_CACHE: a re-read never reaches us);
// fuse drops the page cache first, so every byte goes through go-fuse, the
// handle's Reader and back.
func BenchmarkCachedRead(b *testing.B) {
	const size = 256 << 20
	ft := newFakeTorrent("bench", 1<<20, fakeFile{path: "big.bin", data: randomBytes(42, size)})
	srv, mnt, _ := mountT(b, newFakeHost(ft), Options{})
	path := filepath.Join(mnt, "bench", "big.bin")
	buf := make([]byte, 1<<20)
	readAll := func(b *testing.B) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for off := int64(0); off < size; off += int64(len(buf)) {
			if n, err := f.ReadAt(buf, off); n != len(buf) {
				b.Fatalf("ReadAt %d: %d, %v", off, n, err)
			}
		}
	}
	b.Run("page-cache", func(b *testing.B) {
		readAll(b)
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			readAll(b)
		}
	})
	b.Run("fuse", func(b *testing.B) {
		file := srv.root.GetChild("bench").GetChild("big.bin")
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			file.NotifyContent(0, 0)
			b.StartTimer()
			readAll(b)
		}
	})
}
