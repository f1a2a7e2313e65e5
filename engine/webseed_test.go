package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	requests atomic.Int64 // piece requests: all but HEADs
	heads    atomic.Int64 // HEADs (a torrent connecting ahead)
	idle     atomic.Int64 // connections that went idle after a response
	mu       sync.Mutex   // guards hook
	hook     func(w http.ResponseWriter, r *http.Request) bool
}

func newWSServer(t *testing.T, dir string) *wsServer {
	t.Helper()
	s := &wsServer{}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			s.heads.Add(1)
		} else {
			s.requests.Add(1)
		}
		s.mu.Lock()
		hook := s.hook
		s.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		files.ServeHTTP(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateIdle {
			s.idle.Add(1)
		}
	}
	s.Start()
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
	return wsFixtureFormat(t, files, single, pieceLength, metainfo.FormatV1)
}

// wsFixtureFormat is wsFixture for a v1, v2 or hybrid torrent.
func wsFixtureFormat(t *testing.T, files []swarmtest.FileSpec, single bool, pieceLength int64, format metainfo.Format) (root string, mi *metainfo.MetaInfo) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	src := root
	if single {
		src = filepath.Join(root, files[0].Path)
	}
	mi, err := metainfo.Create(src, metainfo.CreateOptions{PieceLength: pieceLength, NoDate: true, Format: format})
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
		if f.Pad {
			continue
		}
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

// webSeedReader adds mi with url as its only web seed and opens a reader
// of its first file, closed when the test ends.
func webSeedReader(t *testing.T, mi *metainfo.MetaInfo, url string) (*Torrent, *Reader) {
	t.Helper()
	_, tor := webSeedClient(t, mi, Config{}, url)
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return tor, r
}

// wsServedFile makes a single-file torrent of one file big.bin of size
// bytes and a web server for it, and returns the file's bytes too.
func wsServedFile(t *testing.T, size, pieceLen int64) (*metainfo.MetaInfo, *wsServer, []byte) {
	t.Helper()
	root, mi := wsFixture(t, []swarmtest.FileSpec{{Path: "big.bin", Size: size}}, true, pieceLen)
	srv := newWSServer(t, filepath.Dir(root))
	data, err := os.ReadFile(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return mi, srv, data
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
// single- and multi-file, v1, v2 and hybrid, byte-exact through the reader.
func TestWebSeedOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		single bool
		format metainfo.Format
	}{{"multi", false, metainfo.FormatV1}, {"single", true, metainfo.FormatV1}, {"v2-multi", false, metainfo.FormatV2}, {"hybrid-multi", false, metainfo.FormatHybrid}} {
		t.Run(tc.name, func(t *testing.T) {
			root, mi := wsFixtureFormat(t, webSeedFiles(), tc.single, 32<<10, tc.format)
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
		// The torrent's HEAD as it starts (Preconnect) carries no data.
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "big.bin") || lied.Swap(true) {
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
		if r.Method != http.MethodGet {
			return false // the HEAD as the torrent starts: its answer counts for nothing
		}
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
	waitStuckRead(t, tor, 0, 0, "waiting for piece 0: no source has it")
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
	if n := srv.requests.Load() + srv.heads.Load(); n != 0 || tor.Stats().WebSeeds != nil {
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
	path := saveTorrent(t, mi)
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
// waitStuckRead starts a read of file at off that no source can serve,
// waits until Stats.Waiting contains want, and cancels the read when the
// test ends.
func waitStuckRead(t *testing.T, tor *Torrent, file int, off int64, want string) {
	t.Helper()
	r, err := tor.NewReader(file, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(ctx, make([]byte, 1000), off)
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(tor.Stats().Waiting, want) {
		if time.Now().After(deadline) {
			t.Fatalf("Stats.Waiting = %q, web seeds %+v", tor.Stats().Waiting, tor.Stats().WebSeeds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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
