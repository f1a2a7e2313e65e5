package engine

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
	"github.com/swarmfs/swarmfs/engine/webseed"
)

// webSeedFiles has a file spanning many pieces, files smaller than a piece,
// files sharing pieces, and empty files.
func webSeedFiles() []swarmtest.FileSpec {
	return []swarmtest.FileSpec{
		{Path: "big.bin", Size: 1<<20 + 12345},
		{Path: "empty", Size: 0},
		{Path: "a/small.txt", Size: 777},
		{Path: "a/b/mid.bin", Size: 70001},
		{Path: "with space/ünï.dat", Size: 4099},
		{Path: "z/last-empty", Size: 0},
	}
}

// wsServer serves a folder over HTTP with ranges (http.FileServer), with
// hooks to misbehave.
type wsServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex // guards hook
	hook     func(w http.ResponseWriter, r *http.Request) bool
}

func newWSServer(t *testing.T, dir string) *wsServer {
	t.Helper()
	s := &wsServer{}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		hook := s.hook
		s.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *wsServer) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// wsFixture is a torrent of files on disk whose only source is urls.
func wsFixture(t *testing.T, files []swarmtest.FileSpec, single bool, pieceLength int64) (root string, mi *metainfo.MetaInfo) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	src := root
	if single {
		src = filepath.Join(root, files[0].Path)
	}
	mi, err := metainfo.Create(src, metainfo.CreateOptions{PieceLength: pieceLength, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	return root, mi
}

// readAll reads every file of tor through the engine's reader and compares
// it with the files under root.
func readAll(t *testing.T, tor *Torrent, root string, single bool, timeout time.Duration) {
	t.Helper()
	info := tor.Info()
	for i, f := range info.Files {
		want := filepath.Join(root, filepath.Join(f.Path...))
		if single {
			want = filepath.Join(root, info.Name)
		}
		wantBytes, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		r, err := tor.NewReader(i, false)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		got := make([]byte, f.Length+10)
		n, err := r.ReadAt(ctx, got, 0)
		cancel()
		r.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("%s: %v (status %+v)", want, err, tor.Stats())
		}
		if !bytes.Equal(got[:n], wantBytes) {
			t.Fatalf("%s: read %d bytes that differ from the file's %d", want, n, len(wantBytes))
		}
	}
}

func webSeedClient(t *testing.T, mi *metainfo.MetaInfo, cfg Config, urls ...string) (*Client, *Torrent) {
	t.Helper()
	mi.URLList = urls
	c := newClient(t, cfg)
	tor, err := c.AddTorrent(mi, TorrentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c, tor
}

// TestWebSeedOnly reads torrents whose only source is a web seed,
// single- and multi-file, byte-exact through the reader.
func TestWebSeedOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		single bool
	}{{"multi", false}, {"single", true}} {
		t.Run(tc.name, func(t *testing.T) {
			root, mi := wsFixture(t, webSeedFiles(), tc.single, 32<<10)
			srv := newWSServer(t, filepath.Dir(root))
			url := srv.URL + "/"
			if tc.single {
				url = srv.URL + "/data/big.bin" // a URL naming the file itself
			}
			_, tor := webSeedClient(t, mi, Config{}, url)
			readAll(t, tor, root, tc.single, 20*time.Second)
			ws := waitWebSeedStats(t, tor, func(ws WebSeedStats) bool { return ws.Bytes > 0 })
			if ws.State != "active" {
				t.Fatalf("web seed: %+v", ws)
			}
		})
	}
}

// TestWebSeedLies: a web seed that sends wrong bytes for one range once;
// the piece fails its hash check, the seed gets a strike, and the read
// still returns the right bytes.
func TestWebSeedLies(t *testing.T) {
	root, mi := wsFixture(t, webSeedFiles(), false, 32<<10)
	srv := newWSServer(t, filepath.Dir(root))
	var lied atomic.Bool
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "big.bin") || lied.Swap(true) {
			return false
		}
		rec := httptest.NewRecorder()
		http.FileServer(http.Dir(filepath.Dir(root))).ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) > 100 {
			body[100] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
		return true
	})
	_, tor := webSeedClient(t, mi, Config{webSeed: webseedTestConfig()}, srv.URL+"/")
	readAll(t, tor, root, false, 20*time.Second)
	if !lied.Load() {
		t.Fatal("the server never lied")
	}
	ws := waitWebSeedStats(t, tor, func(ws WebSeedStats) bool { return ws.Strikes > 0 })
	if ws.Strikes != 1 {
		t.Fatalf("web seed: %+v, want one strike", ws)
	}
}

// TestWebSeedRetryAfter: a 503 with Retry-After backs off, then the read
// completes.
func TestWebSeedRetryAfter(t *testing.T) {
	root, mi := wsFixture(t, webSeedFiles(), false, 32<<10)
	srv := newWSServer(t, filepath.Dir(root))
	var mu sync.Mutex // guards the two below
	var at503 time.Time
	var during int // requests made 0.2 to 0.9 s after the 503
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if at503.IsZero() {
			at503 = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		// Requests already under way when the 503 came arrive at once.
		if d := time.Since(at503); d > 200*time.Millisecond && d < 900*time.Millisecond {
			during++
		}
		return false
	})
	logs := newLogLines(t)
	_, tor := webSeedClient(t, mi, Config{Logf: logs.logf}, srv.URL+"/")
	readAll(t, tor, root, false, 20*time.Second)
	mu.Lock()
	if during > 0 {
		t.Errorf("%d requests during the Retry-After second", during)
	}
	mu.Unlock()
	if _, ok := logs.find("web seed", "503"); !ok {
		t.Error("no log line about the 503")
	}
}

// TestWebSeedRedirect: the url-list URL redirects to where the files are.
func TestWebSeedRedirect(t *testing.T) {
	root, mi := wsFixture(t, webSeedFiles(), false, 32<<10)
	srv := newWSServer(t, filepath.Dir(root))
	var redirected atomic.Int64
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/old/"); ok {
			redirected.Add(1)
			http.Redirect(w, r, "/"+rest, http.StatusFound)
			return true
		}
		return false
	})
	_, tor := webSeedClient(t, mi, Config{}, srv.URL+"/old/")
	readAll(t, tor, root, false, 20*time.Second)
	if redirected.Load() == 0 {
		t.Fatal("no request was redirected")
	}
}

// TestWebSeedUnreachable: a torrent whose only source is a web seed that
// refuses connections: the waiting read is named in Stats and the log
// (once), not left to look like a slow swarm.
func TestWebSeedUnreachable(t *testing.T) {
	root, mi := wsFixture(t, webSeedFiles(), false, 32<<10)
	_ = root
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	logs := newLogLines(t)
	_, tor := webSeedClient(t, mi, Config{Logf: logs.logf}, "http://"+addr+"/")
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(ctx, make([]byte, 1000), 0)
		done <- err
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(tor.Stats().Waiting, "waiting for piece 0: no source has it") {
		if time.Now().After(deadline) {
			t.Fatalf("Stats.Waiting = %q", tor.Stats().Waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := tor.Stats().Waiting; !strings.Contains(w, "backing off") || !strings.Contains(w, addr) {
		t.Errorf("Stats.Waiting = %q: want the web seed's state", w)
	}
	if _, ok := logs.wait(5*time.Second, "read is waiting for piece 0", "no source has it"); !ok {
		t.Fatal("no log line for the waiting read")
	}
	time.Sleep(2500 * time.Millisecond) // two more ticks: no second line
	if n := logs.count("read is waiting for piece 0"); n != 1 {
		t.Errorf("%d log lines for the waiting read, want 1", n)
	}
}

// TestNoWebSeeds: Config.NoWebSeeds ignores url-list.
func TestNoWebSeeds(t *testing.T) {
	root, mi := wsFixture(t, webSeedFiles(), false, 32<<10)
	srv := newWSServer(t, filepath.Dir(root))
	_, tor := webSeedClient(t, mi, Config{NoWebSeeds: true}, srv.URL+"/")
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := r.ReadAt(ctx, make([]byte, 10), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if n := srv.requests.Load(); n != 0 || tor.Stats().WebSeeds != nil {
		t.Fatalf("%d requests, web seeds %+v", n, tor.Stats().WebSeeds)
	}
}

// TestWebSeedAndLibtorrent: a web seed and a libtorrent seeder together
// complete the torrent byte-exact, each contributing.
func TestWebSeedAndLibtorrent(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	files := []swarmtest.FileSpec{{Path: "video.bin", Size: 6 << 20}, {Path: "empty", Size: 0}, {Path: "notes.txt", Size: 777}}
	root, mi := wsFixture(t, files, false, 64<<10)
	srv := newWSServer(t, filepath.Dir(root))
	// The server is slowed (about 1.6 MB/s a connection) so that the
	// peer has a share to deliver.
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		http.FileServer(http.Dir(filepath.Dir(root))).ServeHTTP(slowWriter{w}, r)
		return true
	})
	raw, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t.torrent")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", UploadRate: 2 << 20})
	lt.AddTorrent(path, filepath.Dir(root), true)
	lt.WaitSeeding(t, mi.InfoHash, 30*time.Second)

	mi.URLList = []string{srv.URL + "/"}
	c := newClient(t, Config{})
	tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true, Peers: nil})
	if err != nil {
		t.Fatal(err)
	}
	tor.AddPeers(peersOfLT(t, lt))
	waitComplete(t, tor, 60*time.Second)
	readAll(t, tor, root, false, 10*time.Second)
	time.Sleep(1200 * time.Millisecond) // a snapshot taken after the end
	ws := waitWebSeedStats(t, tor, func(ws WebSeedStats) bool { return ws.Bytes > 0 })
	st := tor.Stats()
	t.Logf("web seed %d bytes, peer %d", ws.Bytes, st.Downloaded-ws.Bytes)
	if st.Downloaded-ws.Bytes <= 0 {
		t.Errorf("the libtorrent peer sent nothing: downloaded %d, web seed %d", st.Downloaded, ws.Bytes)
	}
}

// webseedTestConfig shortens back-offs so tests do not wait for them.
func webseedTestConfig() webseed.Config {
	return webseed.Config{MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
}

func peersOfLT(t *testing.T, lt *swarmtest.LT) []netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(lt.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return []netip.AddrPort{ap}
}

// count returns how many lines contain every one of parts.
func (l *logLines) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, s := range l.lines {
		for _, p := range parts {
			if !strings.Contains(s, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// waitWebSeedStats waits for the once-a-second snapshot of the torrent's
// one web seed to satisfy ok, and returns it.
func waitWebSeedStats(t *testing.T, tor *Torrent, ok func(WebSeedStats) bool) WebSeedStats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws := tor.Stats().WebSeeds
		if len(ws) == 1 && ok(ws[0]) {
			return ws[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("web seeds: %+v", ws)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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

// slowWriter writes 32 KiB every 20 ms.
type slowWriter struct{ http.ResponseWriter }

func (w slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 32<<10)
		time.Sleep(20 * time.Millisecond)
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
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
	r, err := tor.NewReader(big, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(ctx, make([]byte, 1000), 40000)
		done <- err
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(tor.Stats().Waiting, "no source has it") {
		if time.Now().After(deadline) {
			t.Fatalf("Stats.Waiting = %q, web seeds %+v", tor.Stats().Waiting, tor.Stats().WebSeeds)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	liar := newWSServer(t, filepath.Dir(root))
	liar.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "big.bin") {
			return false
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
	if liar.requests.Load() == 0 {
		t.Fatal("the liar was never asked")
	}
	if _, ok := logs.wait(5*time.Second, "web seed "+liar.URL+"/ dropped"); !ok {
		// It may have been asked too little to earn its strikes; it
		// must at least have been caught.
		if _, ok := logs.find("web seed "+liar.URL+"/", "failed its hash check"); !ok {
			t.Error("the liar was never caught")
		}
	}
}
