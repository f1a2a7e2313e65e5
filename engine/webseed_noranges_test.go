package engine

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// ignoreRanges makes srv answer every request with the whole file, as
// Python's http.server does, and counts its GET requests.
func ignoreRanges(srv *wsServer) *atomic.Int64 {
	var gets atomic.Int64
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		r.Header.Del("Range")
		return false
	})
	return &gets
}

// TestWebSeedIgnoresRanges: a torrent whose only source is a server that
// answers every range with the whole file (as Python's http.server does)
// is read whole, a seek deep into the file first: the seed is used, not
// struck, named once in the log and in Stats, and a reader going through
// the file in order does not make it send the file again for every run.
func TestWebSeedIgnoresRanges(t *testing.T) {
	const size = 12<<20 + 4321
	mi, srv, data := wsServedFile(t, size, 256<<10)
	gets := ignoreRanges(srv)
	logs := newLogLines(t)
	_, tor := webSeedClient(t, mi, Config{Logf: logs.logf}, srv.URL+"/data/big.bin")
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func(off int64, n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		buf := make([]byte, n)
		got, err := r.ReadAt(ctx, buf, off)
		if err != nil && got < n && off+int64(got) < size {
			t.Fatalf("read at %d: %v (status %+v)", off, err, tor.Stats())
		}
		if !bytes.Equal(buf[:got], data[off:off+int64(got)]) {
			t.Fatalf("read at %d: %d bytes that differ from the file's", off, got)
		}
	}
	read(size*3/4, 64<<10) // a player looking at the end first
	for off := int64(0); off < size; off += 1 << 20 {
		read(off, 1<<20)
	}
	ws := waitWebSeedStats(t, tor, func(ws WebSeedStats) bool { return ws.NoRanges })
	if ws.Strikes != 0 || ws.State != "active" {
		t.Errorf("web seed %+v: want active, no strike", ws)
	}
	if n := logs.count("ignores Range requests"); n != 1 {
		t.Errorf("%d log lines about the ignored ranges, want 1", n)
	}
	// Reading from the start after the seek: the seek's request, the
	// runs of the first fill (before the seed was known), and one for
	// the rest, give or take a run cut short. Each run starting over at
	// the file's start would be about 50 requests and 300 MB.
	if n := gets.Load(); n > 12 {
		t.Errorf("%d requests for a %d-byte file read once in order", n, size)
	}
	if ws.Bytes > 4*size {
		t.Errorf("%d bytes received for a %d-byte file read once in order", ws.Bytes, size)
	}
	t.Logf("%d requests, %d bytes received", gets.Load(), ws.Bytes)
}

// TestWebSeedIgnoresRangesDownloadAll: a whole torrent downloaded from a
// server that ignores Range (swarmfs get) is fetched in order from it,
// reading the file about once, not from its start for every run.
func TestWebSeedIgnoresRangesDownloadAll(t *testing.T) {
	const size = 12<<20 + 4321
	mi, srv, _ := wsServedFile(t, size, 64<<10)
	gets := ignoreRanges(srv)
	mi.URLList = []string{srv.URL + "/data/big.bin"}
	c := newClient(t, Config{})
	tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 60*time.Second)
	ws := tor.Stats().WebSeeds
	if len(ws) != 1 || !ws[0].NoRanges || ws[0].Strikes != 0 {
		t.Fatalf("web seeds %+v", ws)
	}
	// The first run, alone until the server's answer tells whether it
	// honours Range, reads the file from its start to its piece; the
	// stream then goes on in order, reading the file once more at most.
	// A run started afresh for each piece would be a request per run.
	if ws[0].Bytes > 2*size+size/4 || gets.Load() > 6 {
		t.Errorf("%d requests and %d bytes received for a %d-byte file", gets.Load(), ws[0].Bytes, size)
	}
	t.Logf("%d requests, %d bytes received", gets.Load(), ws[0].Bytes)
}

// TestWebSeedIgnoresRangesTail: a media file's tail (its container's
// index), which a mount asks for before anything reads it, is not fetched
// through a server that ignores Range, which would send the whole file
// before it: only a read of the tail fetches it (and is answered
// byte-exact).
func TestWebSeedIgnoresRangesTail(t *testing.T) {
	const size = 24<<20 + 777
	mi, srv, data := wsServedFile(t, size, 256<<10)
	ignoreRanges(srv)
	_, tor := webSeedClient(t, mi, Config{}, srv.URL+"/data/big.bin")
	read := func(r *Reader, off int64, n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		buf := make([]byte, n)
		got, err := r.ReadAt(ctx, buf, off)
		if got < n || !bytes.Equal(buf, data[off:off+int64(n)]) {
			t.Fatalf("read %d bytes at %d: got %d: %v (or they differ)", n, off, got, err)
		}
	}
	// A first read tells that the server ignores Range.
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	read(r, 0, 64<<10)
	r.Close()
	before := waitWebSeedStats(t, tor, func(ws WebSeedStats) bool { return ws.NoRanges }).Bytes

	m, err := tor.NewReader(0, true) // the picker asks for head and tail
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	last := mi.Info.NumPieces() - 1
	time.Sleep(1500 * time.Millisecond)
	ws := tor.Stats().WebSeeds[0]
	if tor.HavePiece(last) || ws.Bytes-before > 8<<20 {
		t.Fatalf("with nothing reading it, the tail was fetched (%v) or %d bytes were received for it", tor.HavePiece(last), ws.Bytes-before)
	}
	read(m, size-1000, 1000) // a player reading the index: answered
	t.Logf("%d bytes received for the head, none for the tail until it was read", ws.Bytes-before)
}

// pythonLike makes srv answer as Python's http.server does: every GET with
// the whole file, and no Accept-Ranges in any answer (Go's file server,
// which ignoreRanges leaves in place, says "Accept-Ranges: bytes").
func pythonLike(srv *wsServer, dir string) {
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(path.Clean(r.URL.Path))))
		if err != nil {
			http.NotFound(w, r)
			return true
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return true
		}
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.Copy(w, f)
		}
		return true
	})
}

// TestWebSeedDoubtfulRanges: a server whose answer to the torrent's first
// HEAD says nothing of ranges (as Python's http.server) is taken for one
// that ignores Range before its first answer tells: a media file's head,
// whose first piece begins in the file before it, is fetched without that
// whole file (which such a server sends before that piece's first bytes),
// and a read of that piece still gets it, byte-exact.
func TestWebSeedDoubtfulRanges(t *testing.T) {
	const pl = 256 << 10
	const before = 6<<20 + 12345
	files := []swarmtest.FileSpec{{Path: "a.bin", Size: before}, {Path: "clip.mp4", Size: 3 << 20}}
	root, mi := wsFixture(t, files, false, pl)
	srv := newWSServer(t, filepath.Dir(root))
	pythonLike(srv, filepath.Dir(root))
	_, tor := webSeedClient(t, mi, Config{}, srv.URL+"/")
	// The torrent's HEAD, sent as it starts, finds the ranges doubtful
	// (the list is fixed once the info is known; a Seed is safe for
	// concurrent use).
	seed := tor.ws.list[0].seed
	deadline := time.Now().Add(10 * time.Second)
	for !seed.Stats().RangesDoubtful {
		if time.Now().After(deadline) {
			t.Fatalf("no HEAD answer marked the web seed's ranges doubtful within 10 s (%d HEADs)", srv.heads.Load())
		}
		time.Sleep(time.Millisecond)
	}

	m, err := tor.NewReader(1, true) // the picker asks for head and tail
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	time.Sleep(1500 * time.Millisecond)
	if got := tor.Stats().WebSeeds[0].Bytes; got >= before {
		t.Fatalf("with nothing reading, %d bytes received: the whole file before the clip was sent", got)
	}
	if tor.HavePiece(int(before / pl)) {
		t.Fatal("the piece across the two files was fetched with nothing reading it")
	}
	want, err := os.ReadFile(filepath.Join(root, "clip.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	buf := make([]byte, 1000)
	if n, err := m.ReadAt(ctx, buf, 0); n != len(buf) || !bytes.Equal(buf, want[:len(buf)]) {
		t.Fatalf("read of the clip's first bytes: %d, %v (or they differ)", n, err)
	}
	ws := tor.Stats().WebSeeds[0]
	if !ws.NoRanges {
		t.Errorf("web seed %+v: want it known to ignore Range", ws)
	}
}
