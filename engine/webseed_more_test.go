package engine

// More web seed tests: pad files, a file gone, a liar beside an honest
// seed, and a benchmark of streaming from a web seed.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// BenchmarkWebSeedRead reads a file sequentially through the engine's
// reader from a web seed on loopback, cold, with 1 MiB pieces.
func BenchmarkWebSeedRead(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(b, root, []swarmtest.FileSpec{{Path: "f.bin", Size: size}})
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer srv.Close()
	for i := 0; i < b.N; i++ {
		mi, err := metainfo.Create(filepath.Join(root, "f.bin"), metainfo.CreateOptions{PieceLength: 1 << 20, NoDate: true})
		if err != nil {
			b.Fatal(err)
		}
		mi.URLList = []string{srv.URL + "/"}
		c := newClient(b, Config{Logf: func(string, ...any) {}})
		tor, err := c.AddTorrent(mi, TorrentOptions{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := tor.NewReader(0, false)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 128<<10)
		start := time.Now()
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := r.ReadAt(context.Background(), buf, off); err != nil && !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
		}
		el := time.Since(start)
		r.Close()
		st := tor.Stats()
		b.ReportMetric(float64(size)/el.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(st.Downloaded)/size, "fetched/size")
		c.Close()
	}
}

// TestWebSeedPadFiles: BEP 47 pad files are never requested from a web
// seed; the files around them read byte-exact.
func TestWebSeedPadFiles(t *testing.T) {
	const pieceLen = 32 << 10
	type file struct {
		path []string
		size int
		pad  bool
	}
	files := []file{
		{[]string{"a.bin"}, 40000, false},
		{[]string{".pad", "25536"}, 2*pieceLen - 40000, true},
		{[]string{"b.bin"}, 50000, false},
		{[]string{".pad", "15536"}, 2*pieceLen - 50000, true},
		{[]string{"c.txt"}, 777, false},
	}
	content := map[string][]byte{}
	var data []byte
	var list []map[string]any
	for i, f := range files {
		b := make([]byte, f.size)
		if !f.pad {
			for j := range b {
				b[j] = byte(i*31 + j*7 + j>>9)
			}
		}
		content["/pads/"+strings.Join(f.path, "/")] = b
		data = append(data, b...)
		e := map[string]any{"length": f.size, "path": f.path}
		if f.pad {
			e["attr"] = "p"
		}
		list = append(list, e)
	}
	var pieces []byte
	for off := 0; off < len(data); off += pieceLen {
		sum := sha1.Sum(data[off:min(off+pieceLen, len(data))])
		pieces = append(pieces, sum[:]...)
	}
	var padAsked atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := content[r.URL.Path]
		if !ok || strings.Contains(r.URL.Path, ".pad") {
			padAsked.Add(1)
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	raw, err := bencode.Marshal(map[string]any{
		"info":     map[string]any{"name": "pads", "piece length": pieceLen, "pieces": string(pieces), "files": list},
		"url-list": srv.URL + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Config{})
	tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 20*time.Second)
	for i, f := range tor.Info().Files {
		if f.Pad {
			continue
		}
		r, err := tor.NewReader(i, false)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, f.Length)
		if _, err := r.ReadAt(context.Background(), got, 0); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		r.Close()
		if want := content["/pads/"+strings.Join(f.Path, "/")]; !bytes.Equal(got, want) {
			t.Errorf("%s differs", f.Path)
		}
	}
	if n := padAsked.Load(); n != 0 {
		t.Errorf("%d requests for pad files", n)
	}
}

// TestWebSeedFileGone: a file the web seed answers 404 for is dropped from
// that seed (its pieces are no longer asked of it, and a read of it says
// no source has them); the other files still read byte-exact.
func TestWebSeedFileGone(t *testing.T) {
	// Piece-aligned files: no piece of the others touches gone.bin.
	files := []swarmtest.FileSpec{{Path: "a.bin", Size: 64 << 10}, {Path: "b-gone.bin", Size: 64 << 10}, {Path: "c.bin", Size: 40000}}
	root, mi := wsFixture(t, files, false, 32<<10)
	srv := newWSServer(t, filepath.Dir(root))
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/b-gone.bin") {
			http.NotFound(w, r)
			return true
		}
		return false
	})
	_, tor := webSeedClient(t, mi, Config{}, srv.URL+"/")
	info := tor.Info()
	big := slices.IndexFunc(info.Files, func(f metainfo.File) bool { return strings.Join(f.Path, "/") == "b-gone.bin" })
	waitStuckRead(t, tor, big, 40000, "no source has it")
	ws := waitWebSeedStats(t, tor, func(ws WebSeedStats) bool { return ws.DisabledFiles == 1 })
	if ws.State != "active" {
		t.Errorf("web seed %+v: want it active for the other files", ws)
	}
	for i, f := range info.Files {
		if i == big {
			continue
		}
		want, err := os.ReadFile(filepath.Join(root, filepath.Join(f.Path...)))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tor.NewReader(i, false)
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		got := make([]byte, f.Length)
		_, err = r.ReadAt(rctx, got, 0)
		rcancel()
		r.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s differs", f.Path)
		}
	}
}

// TestWebSeedLiarDropped: of two web seeds, one always sends corrupt data
// for one file: it is dropped after its strikes, and the honest one
// serves everything byte-exact.
func TestWebSeedLiarDropped(t *testing.T) {
	root, mi := wsFixture(t, webSeedFiles(), false, 32<<10)
	honest := newWSServer(t, filepath.Dir(root))
	// The honest seed is slow to answer for big.bin, so that the picker
	// asks the liar for some of it too (on a loaded machine it could
	// otherwise take all of it from the honest one, and the liar would
	// never be put to the test).
	honest.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "big.bin") {
			time.Sleep(200 * time.Millisecond)
		}
		return false
	})
	liar := newWSServer(t, filepath.Dir(root))
	var liarBig atomic.Int64
	liar.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "big.bin") {
			return false
		}
		if r.Method == http.MethodGet {
			liarBig.Add(1)
		}
		rec := httptest.NewRecorder()
		http.FileServer(http.Dir(filepath.Dir(root))).ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for i := 0; i < len(body); i += 4096 {
			body[i] ^= 0xff
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(body)
		return true
	})
	logs := newLogLines(t)
	c := newClient(t, Config{Logf: logs.logf, webSeed: webseedTestConfig()})
	mi.URLList = []string{liar.URL + "/", honest.URL + "/"}
	tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 30*time.Second)
	readAll(t, tor, root, false, 10*time.Second)
	if liarBig.Load() == 0 {
		t.Fatal("the liar was never asked for big.bin")
	}
	if _, ok := logs.wait(5*time.Second, "web seed "+liar.URL+"/ dropped"); !ok {
		// It may have been asked too little to earn its strikes; it
		// must at least have been caught.
		if _, ok := logs.find("web seed "+liar.URL+"/", "failed its hash check"); !ok {
			t.Error("the liar was never caught")
		}
	}
}
