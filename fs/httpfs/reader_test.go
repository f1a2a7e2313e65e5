package httpfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// bigOf returns big.bin of the sample torrent: its offset in the torrent
// and its data.
func bigOf(t *testing.T, ft *fakeTorrent) (off int64, data []byte) {
	t.Helper()
	for _, f := range ft.Info().Files {
		if f.Path[0] == "big.bin" {
			return f.Offset, ft.data[f.Offset : f.Offset+f.Length]
		}
	}
	t.Fatal("no big.bin")
	return 0, nil
}

// TestFirstBytesFlushed: the bytes of a range that are there reach the
// client while the rest still waits for the swarm; they must not sit in
// net/http's buffers until the next piece arrives.
func TestFirstBytesFlushed(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	ts := start(t, newFakeHost(ft), Options{})
	start, data := bigOf(t, ft)
	pl := ft.pieceLen
	// 100 bytes before the end of big.bin's second piece, up to 1000
	// bytes into its third, which is missing.
	boundary := (start/pl+2)*pl - start
	from, to := boundary-100, boundary+999
	missing := int((start + boundary) / pl)
	ft.setHave(missing, missing+1, false)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fileURLOf(ts, "sample", "big.bin"), nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no response while piece %d is missing: %v", missing, err)
	}
	defer resp.Body.Close()
	got := make([]byte, to-from+1)
	if _, err := io.ReadFull(resp.Body, got[:100]); err != nil {
		t.Fatalf("the 100 bytes before the missing piece did not arrive: %v", err)
	}
	if ft.waiting.Load() == 0 {
		t.Error("the read of the missing piece is not waiting")
	}
	ft.setHave(missing, missing+1, true)
	if _, err := io.ReadFull(resp.Body, got[100:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[from:to+1]) {
		t.Error("wrong bytes")
	}
}

// TestSmallRangeReadsItsBytes: a small range asks the torrent's Reader
// for its own bytes, not for the rest of the piece, whose copy would delay
// its first byte.
func TestSmallRangeReadsItsBytes(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	ts := start(t, newFakeHost(ft), Options{})
	_, data := bigOf(t, ft)
	const from, n = 300 << 10, 1000
	before := ft.readBytes.Load()
	resp, b := get(t, fileURLOf(ts, "sample", "big.bin"), "Range", fmt.Sprintf("bytes=%d-%d", from, from+n-1))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[from:from+n]) {
		t.Fatalf("%s, %d bytes", resp.Status, len(b))
	}
	if asked := ft.readBytes.Load() - before; asked != n {
		t.Errorf("the reader was asked for %d bytes for a range of %d", asked, n)
	}
}
