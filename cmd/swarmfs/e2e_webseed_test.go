package main

// End-to-end tests of web seeds (BEP 19, issue 12): torrents whose only
// source is an HTTP server in this test process, read through a real
// mount byte-exact, and a torrent whose web seed is unreachable, whose
// waiting read shows in status and an extended attribute.

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// webSeedTorrent writes a .torrent of src whose url-list is urls.
func webSeedTorrent(t *testing.T, src string, urls ...string) string {
	t.Helper()
	mi, err := metainfo.Create(src, metainfo.CreateOptions{PieceLength: pieceLen, NoDate: true, WebSeeds: urls})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(src)+".torrent")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// statusJSON is "swarmfs status --json" of the mount using dataDir.
func statusJSON(t *testing.T, dataDir string) []session.TorrentStatus {
	t.Helper()
	out, code := swarmfsCmd(t, "status", "--data-dir", dataDir, "--json")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	var ts []session.TorrentStatus
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return ts
}

// TestWebSeedMount mounts a multi-file and a single-file torrent whose only
// source is a web seed that redirects, answers its first request with 503
// and Retry-After, and lies about one range once; every file (one spanning
// many pieces, empty ones) reads byte-exact, and status shows the seed.
func TestWebSeedMount(t *testing.T) {
	swarmtest.RequireTools(t, "fuse")
	root := t.TempDir()
	multi := filepath.Join(root, "wsdata")
	swarmtest.WriteFiles(t, multi, swarmtest.StandardFiles())
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{{Path: "wssolo.bin", Size: 1<<20 + 4321}})

	files := http.FileServer(http.Dir(root))
	var mu sync.Mutex // guards the three below
	var busy, lied, redirected int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/old/")
		if ok {
			mu.Lock()
			redirected++
			mu.Unlock()
			http.Redirect(w, r, "/new/"+rest, http.StatusFound)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/new")
		if r.Method != http.MethodGet {
			// The HEAD a torrent sends as it starts, to open the
			// connection: the 503 and the lie are for piece requests.
			files.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		busy++
		first := busy == 1
		lie := !first && lied == 0 && strings.HasSuffix(r.URL.Path, "big.bin")
		if lie {
			lied++
		}
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if !lie {
			files.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		files.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) > 1000 {
			body[1000] ^= 0x5a
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)

	mt := webSeedTorrent(t, multi, srv.URL+"/old/")
	st := webSeedTorrent(t, filepath.Join(root, "wssolo.bin"), srv.URL+"/old/wssolo.bin")
	m := startMount(t, mountOpts{IP: "127.0.0.81", Flags: []string{"-v", "--read-timeout", "30s"}, Sources: []string{mt, st}})

	swarmtest.VerifyTree(t, multi, filepath.Join(m.Dir, "wsdata"))
	want, err := os.ReadFile(filepath.Join(root, "wssolo.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(m.Dir, "wssolo.bin", "wssolo.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("wssolo.bin: %d bytes read differ from the file's %d", len(got), len(want))
	}
	mu.Lock()
	if busy < 2 || lied != 1 || redirected == 0 {
		t.Errorf("the server answered %d requests, lied %d times, redirected %d", busy, lied, redirected)
	}
	mu.Unlock()

	// status shows each torrent's web seed, in JSON and in text.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := true
		ts := statusJSON(t, m.DataDir)
		for _, s := range ts {
			if len(s.WebSeeds) != 1 || s.WebSeeds[0].Bytes == 0 {
				ok = false
			}
		}
		if ok && len(ts) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status --json: %+v", ts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := swarmfsCmd(t, "status", "--data-dir", m.DataDir)
	if !strings.Contains(out, "wsdata: web seed "+srv.URL+"/old/: ") {
		t.Errorf("status lacks the web seed:\n%s", out)
	}
	if !strings.Contains(m.Output(), "failed its hash check") {
		t.Errorf("the log does not show the bad piece:\n%s", m.Output())
	}
	m.StopClean(t)
}

// TestWebSeedUnreachableMount: a torrent whose only source is a web seed
// nobody answers: a read waits, and says so in status, the -v log (once)
// and user.swarmfs.waiting, instead of hanging silently.
func TestWebSeedUnreachableMount(t *testing.T) {
	swarmtest.RequireTools(t, "fuse")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on
	root := t.TempDir()
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{{Path: "gone.bin", Size: 200000}})
	tor := webSeedTorrent(t, filepath.Join(root, "gone.bin"), "http://"+addr+"/")
	m := startMount(t, mountOpts{IP: "127.0.0.82", Flags: []string{"-v"}, Sources: []string{tor}})
	file := filepath.Join(m.Dir, "gone.bin", "gone.bin")
	waitPath(t, file, time.Minute)

	reader := startBg(t, nil, "head", "-c", "100", file)
	const want = "waiting for piece 0: no source has it"
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts := statusJSON(t, m.DataDir)
		if len(ts) == 1 && strings.Contains(ts[0].Waiting, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status --json: %+v", ts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, _ := swarmfsCmd(t, "status", "--data-dir", m.DataDir); !strings.Contains(out, want) {
		t.Errorf("status lacks %q:\n%s", want, out)
	}
	if out := runProg(t, 10*time.Second, "getfattr", "-n", "user.swarmfs.waiting", "--only-values", file); !strings.Contains(out, want) {
		t.Errorf("user.swarmfs.waiting = %q", out)
	}
	time.Sleep(2 * time.Second) // more ticks: still one line
	if n := strings.Count(m.Output(), "read is waiting for piece 0"); n != 1 {
		t.Errorf("%d log lines for the waiting read, want 1:\n%s", n, m.Output())
	}
	if !reader.running() {
		t.Error("the read ended; it should still wait")
	}
	m.StopClean(t)
}

// TestWebSeedPythonServer: a web seed served by Python's http.server,
// which answers every range with the whole file. A read deep into a file
// first, then every file of a multi-file torrent and a single-file one,
// read byte-exact through the mount; status names the seed as ignoring
// ranges, with no strike and no error.
func TestWebSeedPythonServer(t *testing.T) {
	swarmtest.RequireTools(t, "fuse", "python3-http.server")
	const ip = "127.0.0.86"
	root := t.TempDir()
	multi := filepath.Join(root, "pydata")
	swarmtest.WriteFiles(t, multi, swarmtest.StandardFiles())
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{{Path: "pysolo.bin", Size: 6<<20 + 777}})
	port := swarmtest.FreePort(t, ip)
	base := "http://" + net.JoinHostPort(ip, strconv.Itoa(port))
	startBg(t, nil, swarmtest.Python, "-m", "http.server", strconv.Itoa(port), "--bind", ip, "--directory", root)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("python3 -m http.server did not listen on %s:%d", ip, port)
		}
	}

	mt := webSeedTorrent(t, multi, base+"/")
	st := webSeedTorrent(t, filepath.Join(root, "pysolo.bin"), base+"/pysolo.bin")
	m := startMount(t, mountOpts{IP: ip, Flags: []string{"-v", "--read-timeout", "60s"}, Sources: []string{mt, st}})

	want, err := os.ReadFile(filepath.Join(root, "pysolo.bin"))
	if err != nil {
		t.Fatal(err)
	}
	solo := filepath.Join(m.Dir, "pysolo.bin", "pysolo.bin")
	waitPath(t, solo, time.Minute)
	f, err := os.Open(solo)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(len(want)) * 4 / 5
	buf := make([]byte, 100000)
	n, err := f.ReadAt(buf, off)
	f.Close()
	if err != nil || !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
		t.Fatalf("read at %d: %d bytes, %v, or bytes that differ", off, n, err)
	}
	got, err := os.ReadFile(solo)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("pysolo.bin: %d bytes (%v) differ from the file's %d", len(got), err, len(want))
	}
	swarmtest.VerifyTree(t, multi, filepath.Join(m.Dir, "pydata"))

	var seen int
	for deadline := time.Now().Add(10 * time.Second); seen < 2; time.Sleep(100 * time.Millisecond) {
		seen = 0
		for _, s := range statusJSON(t, m.DataDir) {
			if len(s.WebSeeds) == 1 && s.WebSeeds[0].NoRanges {
				if ws := s.WebSeeds[0]; ws.Strikes != 0 || ws.State != "active" {
					t.Errorf("%s: web seed %+v: want active, no strike", s.Name, ws)
				}
				seen++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status --json: %+v", statusJSON(t, m.DataDir))
		}
	}
	if out, _ := swarmfsCmd(t, "status", "--data-dir", m.DataDir); !strings.Contains(out, "ignores ranges") {
		t.Errorf("status does not say the seed ignores ranges:\n%s", out)
	}
	m.StopClean(t)
}
