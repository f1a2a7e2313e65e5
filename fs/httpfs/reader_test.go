package httpfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
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
	// The server flushes those bytes before it asks for the missing
	// piece: under load the client can have them first.
	for deadline := time.Now().Add(5 * time.Second); ft.waiting.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the read of the missing piece is not waiting after 5 s")
		}
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

// rangeOn GETs bytes [from, to] of p over client and checks them against
// want; it reports whether the request went over a connection used
// before.
func rangeOn(t *testing.T, client *http.Client, u string, from, to int64, want []byte) (reused bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused },
	}))
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, want[from:to+1]) {
		t.Fatalf("range %d-%d: %s, %d bytes, %v", from, to, resp.Status, len(b), err)
	}
	return reused
}

// TestReaderKeptAcrossRanges: consecutive ranges of one file on one
// keep-alive connection (a TV streaming by ranges) read through one
// Reader, so its readahead carries over; a request for another file, the
// connection's end, or ReaderLinger without a request closes it.
func TestReaderKeptAcrossRanges(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	ts := start(t, newFakeHost(ft), Options{})
	_, data := bigOf(t, ft)
	// One connection at most: the transport returns a connection to its
	// idle pool from a goroutine of its own after the body's EOF, and
	// without the cap a next request on a loaded machine can dial a new
	// one before that, which is not what this test is about.
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	u := fileURLOf(ts, "sample", "big.bin")
	const chunk = 300 << 10
	for i := range int64(4) {
		if reused := rangeOn(t, client, u, i*chunk, (i+1)*chunk-1, data); reused != (i > 0) {
			t.Fatalf("request %d: connection reused %v", i, reused)
		}
	}
	if n := ft.opened.Load(); n != 1 {
		t.Errorf("%d readers opened for 4 ranges on one connection, want 1", n)
	}
	if n := ft.open(); n != 1 {
		t.Errorf("%d readers open between requests, want the connection's one", n)
	}
	// Another file: the first reader is closed at once.
	rangeOn(t, client, fileURLOf(ts, "sample", "README.txt"), 0, 4, []byte("hello, swarm\n"))
	if ft.opened.Load() != 2 || ft.open() != 1 {
		t.Errorf("after another file: %d opened, %d open; want 2 and 1", ft.opened.Load(), ft.open())
	}
	// The connection's end closes the last.
	tr.CloseIdleConnections()
	waitFor(t, "the reader closed with its connection", func() bool { return ft.open() == 0 })

	// Without a request for ReaderLinger, it is closed too.
	defer func(d time.Duration) { readerLinger = d }(readerLinger)
	readerLinger = 50 * time.Millisecond
	rangeOn(t, client, u, 0, 99, data)
	waitFor(t, "the idle reader closed after ReaderLinger", func() bool { return ft.open() == 0 })
}

// TestMediaHeadOnlyFromStart: a media file's head and tail are fetched at
// once for a request from its start, as a player opening it makes, not
// for a seek further on (a range near the end must not fetch the head).
func TestMediaHeadOnlyFromStart(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	ts := start(t, newFakeHost(ft), Options{})
	u := fileURLOf(ts, "sample", "video/clip.mp4")
	for _, c := range []struct {
		rng   string
		media bool
	}{
		{"bytes=3000000-", false},
		{"bytes=-1000", false},
		{"bytes=2000000-2000100", false},
		{"bytes=0-", true},
		{"bytes=48-1000", true},
	} {
		before := ft.media.Load()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Range", c.rng)
		req.Close = true // a reader of its own
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := ft.media.Load() > before; got != c.media {
			t.Errorf("%s: head and tail asked %v, want %v", c.rng, got, c.media)
		}
	}
}

// TestHeadersBeforeMissingPiece: a response whose first bytes wait for
// the swarm sends its headers at once. ffmpeg seeks by opening a new
// connection and closes the old one once the new one's headers arrive:
// until then the old request's reads compete with the new position's.
func TestHeadersBeforeMissingPiece(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	ts := start(t, newFakeHost(ft), Options{})
	start, data := bigOf(t, ft)
	pl := ft.pieceLen
	from := 3*pl - start%pl + 10 // inside big.bin's fourth piece
	missing := int((start + from) / pl)
	ft.setHave(missing, missing+1, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fileURLOf(ts, "sample", "big.bin"), nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no headers while piece %d is missing: %v", missing, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("%s", resp.Status)
	}
	ft.setHave(missing, missing+1, true)
	b, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(b, data[from:]) {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
}

// TestResponseRunsAheadLittle: a client that reads the head of a file and
// then stops (ffprobe, before it seeks to the index at the end) leaves the
// server reading little beyond what it took: the connection's small send
// buffer (SendBuffer) stops the response's writes, and with them its
// fills, each of which may make the engine fetch the next piece first.
// Before, the server read 5-6 MiB ahead into the socket's buffers.
func TestResponseRunsAheadLittle(t *testing.T) {
	const size = 32 << 20
	ft := newFakeTorrent("big", 1<<20, fakeFile{path: "big.bin", data: randomBytes(7, size)})
	ts := start(t, newFakeHost(ft), Options{})
	u, err := url.Parse(fileURLOf(ts, "big", "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=0-\r\n\r\n", u.EscapedPath(), u.Host)
	if _, err := io.ReadFull(c, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	// The server reads ahead until its writes block; wait until the
	// bytes it read stop growing.
	last := int64(-1)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n := ft.readBytes.Load()
		if n == last {
			break
		}
		last = n
	}
	t.Logf("the server read %d KiB for a client that took 32 KiB", last>>10)
	if limit := int64(3 << 20); last > limit {
		t.Errorf("the server read %d MiB ahead of a client that took 32 KiB, want at most %d MiB", last>>20, limit>>20)
	}
}
