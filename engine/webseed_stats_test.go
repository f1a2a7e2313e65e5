package engine

import (
	"context"
	"testing"
	"time"
)

// TestWebSeedStatsLive: Stats reads a web seed's bytes when it is called,
// not as of the last one-second snapshot: right after each read, what the
// read needed is counted.
func TestWebSeedStatsLive(t *testing.T) {
	const size = 8 << 20
	mi, srv, _ := wsServedFile(t, size, 256<<10)
	tor, r := webSeedReader(t, mi, srv.URL+"/data/big.bin")
	buf := make([]byte, 256<<10)
	for i, off := range []int64{0, 3 << 20, 6 << 20} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := r.ReadAt(ctx, buf, off)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		ws := tor.Stats().WebSeeds
		if len(ws) != 1 {
			t.Fatalf("web seeds %+v", ws)
		}
		if want := int64(i+1) * int64(len(buf)); ws[0].Bytes < want {
			t.Fatalf("after the read at %d: %d bytes received", off, ws[0].Bytes)
		}
	}
}
