package httpfs

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkServeCached is a whole 64 MiB file served over loopback HTTP
// from a torrent that has every piece: the cost of the front-end itself
// (the cached re-read figure of issue 13), without the engine.
func BenchmarkServeCached(b *testing.B) {
	const size = 64 << 20
	ft := newFakeTorrent("bench", 1<<20, fakeFile{path: "big.bin", data: randomBytes(4, size)})
	ts := start(b, newFakeHost(ft), Options{Logf: b.Logf})
	u := fileURLOf(ts, "bench", "big.bin")
	// The client reads in large buffers, as a player or curl does, so
	// that the figure is the server's.
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	for b.Loop() {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		var n int
		for err == nil {
			var m int
			m, err = resp.Body.Read(buf)
			n += m
		}
		resp.Body.Close()
		if err != io.EOF || n != size {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}
