package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/swarmfs/swarmfs/fs/httpfs"
)

// serveProc is a running "swarmfs serve", killed at cleanup.
type serveProc struct {
	c    *child
	out  *syncBuffer
	base string // http://ADDR
}

func startServe(t testing.TB, flags []string, sources ...string) *serveProc {
	t.Helper()
	args := []string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--cache-size", "512MiB",
		"--no-dht", "--no-lsd", "--http", "127.0.0.1:0"}
	args = append(append(args, flags...), sources...)
	p := &serveProc{out: &syncBuffer{}}
	cmd := exec.Command(swarmfsBin(t), args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	c, err := startChild(cmd)
	if err != nil {
		t.Fatal(err)
	}
	p.c = c
	t.Cleanup(func() {
		c.signal(syscall.SIGKILL)
		c.wait(time.Minute)
	})
	re := regexp.MustCompile(`served at (http://[0-9.:]+)/`)
	deadline := time.Now().Add(time.Minute)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			p.base = m[1]
			return p
		}
		if !c.running() || time.Now().After(deadline) {
			t.Fatalf("swarmfs serve not up:\n%s", p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s, %v: %.300s", u, resp.Status, err, b)
	}
	return b
}

// serveRate caps the seeder of TestServeHTTP (bytes/s), so ffprobe and
// ffmpeg -ss wait on the swarm as a player on a real one does.
const serveRate = 1 << 20

// TestServeHTTP streams a rate-limited libtorrent swarm's torrent through
// "swarmfs serve", with no FUSE mount: ffprobe and ffmpeg -ss on the MP4's
// URL (its index at the end) while it is cold, a client that goes away
// mid-body (its reader shown on the status page, then gone), files
// byte-exact, the metrics, and the status page in a headless Chromium.
func TestServeHTTP(t *testing.T) {
	d := testData(t)
	sw := startSwarm(t, d, serveRate)
	p := startServe(t, nil, sw.multi.Path)
	var ts []httpfs.TorrentJSON
	if err := json.Unmarshal(httpGet(t, p.base+"/api/torrents"), &ts); err != nil || len(ts) != 1 || !ts[0].HasInfo {
		t.Fatalf("/api/torrents: %v %+v", err, ts)
	}
	folder := ts[0].Folder
	fileURL := func(rel string) string {
		segs := append([]string{folder}, strings.Split(filepath.ToSlash(rel), "/")...)
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		return p.base + "/files/" + strings.Join(segs, "/")
	}

	// The status page in a headless Chromium, before and after the files
	// are read.
	// browse runs a headless Chromium on the status page, as a phone
	// (412x915) unless size says otherwise.
	var browse func(t *testing.T, arg string, size ...string) string
	if chromium, err := exec.LookPath("chromium"); err == nil {
		browse = func(t *testing.T, arg string, size ...string) string {
			t.Helper()
			ws := "412,915"
			if len(size) > 0 {
				ws = size[0]
			}
			return runProg(t, 2*time.Minute, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
				"--user-data-dir="+filepath.Join(t.TempDir(), "profile"), "--virtual-time-budget=5000",
				"--window-size="+ws, "--hide-scrollbars", arg, p.base+"/")
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing (apt-get install chromium)")
	}
	before := -1.0
	if browse != nil {
		before = shownProgress(t, browse(t, "--dump-dom"))
	}

	t.Run("ffprobe", func(t *testing.T) {
		// The clip is cold: nothing of it has been read.
		start := time.Now()
		out := runProg(t, time.Minute, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", fileURL("media/clip.mp4"))
		if !strings.HasPrefix(strings.TrimSpace(out), "12.") {
			t.Errorf("ffprobe duration %q, want 12 s", out)
		}
		probe := time.Since(start)
		start = time.Now()
		runProg(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-ss", "6", "-i", fileURL("media/clip.mp4"), "-t", "2", "-f", "null", "-")
		t.Logf("from a swarm at %d KiB/s: ffprobe %v, ffmpeg -ss 6 -t 2 %v", serveRate>>10, probe.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	})
	t.Run("reader", func(t *testing.T) {
		// The seeder slowed to a trickle, so the request below waits on
		// the swarm for as long as the test looks at it: at 4 KiB/s a
		// piece in flight stays in flight for seconds, longer than the
		// browser takes to start and fetch the page (at 32 KiB/s, one
		// piece a second, the piece seen in flight had arrived by the
		// time the browser asked, once in CI).
		sw.seeder.SetRates(4<<10, 0)
		defer sw.seeder.SetRates(serveRate, 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fileURL("big.bin"), nil)
		resp, err := http.DefaultClient.Do(req) // returns once the first bytes are read
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		// The client goes on reading, so that its reader reaches pieces
		// the trickle has not brought yet (the seeder's new rate may take
		// a moment to apply, and the window it started with may be here
		// already, with nothing left to fetch for it).
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, resp.Body)
		}()
		defer func() { <-drained }()
		defer resp.Body.Close()
		tj := waitTorrent(t, p.base, "a reader of big.bin waiting on a piece in flight", func(tj httpfs.TorrentJSON) bool {
			if len(tj.Readers) != 1 || tj.Readers[0].Path != "big.bin" || tj.Readers[0].Position == 0 {
				return false
			}
			// A piece in flight at or ahead of the reader: one behind
			// it (left from the clip's reads) arrives without it.
			// Cell is the piece of the reader's last byte, the one a
			// waiting read waits on; a piece the reader has read past
			// is had, never in flight.
			from := tj.Readers[0].Cell
			return from < len(tj.Downloading) && strings.Contains(tj.Downloading[from:], "1")
		})
		t.Logf("reader %+v, pieces in flight %q", tj.Readers[0], tj.Downloading)
		if browse != nil {
			// The page is a later snapshot than the one above; what it
			// must show is there while the reader waits, so a page
			// that lacks it is looked at again (up to three times),
			// with what the JSON said meanwhile.
			wants := []string{`class="reader" data-path="big.bin"`, `class="pos"`, `class="dl"`}
			for try := 1; ; try++ {
				dom := browse(t, "--dump-dom")
				var lacks []string
				for _, want := range wants {
					if !strings.Contains(dom, want) {
						lacks = append(lacks, want)
					}
				}
				if len(lacks) == 0 {
					break
				}
				var now []httpfs.TorrentJSON
				json.Unmarshal(httpGet(t, p.base+"/api/torrents"), &now)
				if try == 3 {
					t.Errorf("the rendered page lacks %s while big.bin is read (JSON now: %+v):\n%.4000s", lacks, now, dom)
					break
				}
				t.Logf("page %d lacks %s; JSON now: %+v", try, lacks, now)
			}
			// The screenshot of docs/status-page.png is this one
			// (scripts/status-page.sh).
			if out := os.Getenv("SWARMFS_STATUS_SCREENSHOT"); out != "" {
				browse(t, "--screenshot="+out, "900,760")
				t.Logf("status page written to %s", out)
			}
		}
		// The client goes away mid-body: its reader is closed, no read
		// is left waiting on the swarm, though big.bin is not there yet.
		cancel()
		resp.Body.Close()
		tj = waitTorrent(t, p.base, "no reader left", func(tj httpfs.TorrentJSON) bool { return len(tj.Readers) == 0 })
		for _, f := range tj.Files {
			if f.Path == "big.bin" && f.Completed == f.Size {
				t.Errorf("big.bin complete before its reader was gone: the test proves nothing")
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for !bytes.Contains(httpGet(t, p.base+"/metrics"), []byte(`swarmfs_reads_in_flight{frontend="http"} 0`)) {
			if time.Now().After(deadline) {
				t.Fatalf("HTTP reads still in flight after the client went away:\n%s", httpGet(t, p.base+"/metrics"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("files", func(t *testing.T) {
		for _, rel := range regularFiles(t, d.Multi) {
			want, err := os.ReadFile(filepath.Join(d.Multi, rel))
			if err != nil {
				t.Fatal(err)
			}
			if got := httpGet(t, fileURL(rel)); !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, differ from the original's %d", rel, len(got), len(want))
			}
		}
	})
	t.Run("metrics", func(t *testing.T) {
		b := httpGet(t, p.base+"/metrics")
		var parser expfmt.TextParser
		mfs, err := parser.TextToMetricFamilies(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("metrics do not parse: %v", err)
		}
		for _, name := range []string{"swarmfs_torrent_downloaded_bytes_total", "swarmfs_torrent_uploaded_bytes_total",
			"swarmfs_torrent_wasted_bytes_total", "swarmfs_torrent_hash_failures_total", "swarmfs_torrent_peers",
			"swarmfs_torrent_readers", "swarmfs_torrent_pieces_downloading", "swarmfs_cache_size_bytes",
			"swarmfs_cache_capacity_bytes", "swarmfs_torrent_banned_peers", "swarmfs_read_duration_seconds", "swarmfs_reads_in_flight"} {
			if mfs[name] == nil {
				t.Errorf("no %s in /metrics", name)
			}
		}
		if h := mfs["swarmfs_read_duration_seconds"]; h != nil && h.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("no read counted in the latency histogram")
		}
		if _, err := exec.LookPath("promtool"); err == nil {
			cmd := exec.Command("promtool", "check", "metrics")
			cmd.Stdin = bytes.NewReader(b)
			if out, err := cmd.CombinedOutput(); err != nil {
				// promtool exits 1 for lint advice too; only a parse
				// error is a failure of ours.
				if strings.Contains(string(out), "error while linting") || strings.Contains(string(out), "parse") {
					t.Errorf("promtool check metrics: %v: %s", err, out)
				} else {
					t.Logf("promtool advice: %s", out)
				}
			}
		}
	})
	t.Run("browser", func(t *testing.T) {
		if browse == nil {
			t.Skip("chromium is missing")
		}
		dom := browse(t, "--dump-dom")
		for _, want := range []string{folder, "clip.mp4", `data-infohash="` + ts[0].InfoHash + `"`} {
			if !strings.Contains(dom, want) {
				t.Errorf("the rendered page lacks %q:\n%.3000s", want, dom)
			}
		}
		// Every file has been read since the first look: the progress
		// shown has grown, to all of it.
		if after := shownProgress(t, dom); after <= before || after != 100 {
			t.Errorf("the page showed %.1f%% before the files were read, %.1f%% after; want it grown to 100%%", before, after)
		}
		shot := filepath.Join(t.TempDir(), "status.png")
		browse(t, "--screenshot="+shot)
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Errorf("no screenshot: %v", err)
		}
		t.Logf("screenshot: %s", shot)
	})
	p.c.signal(os.Interrupt)
	if !p.c.wait(time.Minute) || p.c.exitCode() != 0 {
		t.Errorf("swarmfs serve did not stop cleanly (%d):\n%s", p.c.exitCode(), p.out.String())
	}
}

// waitTorrent polls /api/torrents until its one torrent satisfies cond.
func waitTorrent(t *testing.T, base, what string, cond func(httpfs.TorrentJSON) bool) httpfs.TorrentJSON {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ts []httpfs.TorrentJSON
		b := httpGet(t, base+"/api/torrents")
		if err := json.Unmarshal(b, &ts); err != nil || len(ts) != 1 {
			t.Fatalf("/api/torrents: %v %s", err, b)
		}
		if cond(ts[0]) {
			return ts[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on /api/torrents after 15 s: %s", what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeMagnetWaiting: a magnet whose metadata has not arrived is
// listed, and its folder answers 503 with a Retry-After and says why,
// rather than 404.
func TestServeMagnetWaiting(t *testing.T) {
	ih := strings.Repeat("5a", 20)
	p := startServe(t, []string{"--no-trackers"}, "magnet:?xt=urn:btih:"+ih+"&dn=Later")
	var ts []httpfs.TorrentJSON
	if err := json.Unmarshal(httpGet(t, p.base+"/api/torrents"), &ts); err != nil || len(ts) != 1 || ts[0].HasInfo {
		t.Fatalf("/api/torrents: %v %+v", err, ts)
	}
	resp, err := http.Get(p.base + "/files/" + url.PathEscape(ts[0].Folder) + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !bytes.Contains(b, []byte("waiting for metadata")) {
		t.Errorf("the folder of %s before its metadata: %s, Retry-After %q: %s", ts[0].Folder, resp.Status, resp.Header.Get("Retry-After"), b)
	}
}

// shownProgress is the progress of the one torrent on the rendered status
// page, in percent.
func shownProgress(t *testing.T, dom string) float64 {
	t.Helper()
	m := regexp.MustCompile(`([0-9.]+)% of `).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no progress on the rendered page:\n%.3000s", dom)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestServeRefusesOpenAddress: serving beyond loopback without
// credentials does not start.
func TestServeRefusesOpenAddress(t *testing.T) {
	var out bytes.Buffer
	code := run([]string{"serve", "--data-dir", t.TempDir(), "--http", "0.0.0.0:0"}, &out, &out)
	if code != 2 || !strings.Contains(out.String(), "--http-auth") {
		t.Errorf("exit %d: %s", code, out.String())
	}
}

// TestMountHTTP: "mount --http" serves the mount's files over HTTP too,
// byte-exact, and counts the FUSE reads in the same metrics.
func TestMountHTTP(t *testing.T) {
	d := testData(t)
	sw := startSwarm(t, d, 0)
	m := startMount(t, mountOpts{Flags: []string{"--http", "127.0.0.1:0"}, Sources: []string{sw.multi.Path}})
	match := regexp.MustCompile(`serving HTTP at (http://[0-9.:]+)/`).FindStringSubmatch(m.Output())
	if match == nil {
		t.Fatalf("no HTTP address in:\n%s", m.Output())
	}
	base := match[1]
	dir := filepath.Join(m.Dir, filepath.Base(d.Multi))
	waitPath(t, dir, time.Minute)
	for _, rel := range regularFiles(t, d.Multi) {
		want, err := os.ReadFile(filepath.Join(d.Multi, rel))
		if err != nil {
			t.Fatal(err)
		}
		segs := strings.Split(filepath.ToSlash(rel), "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		got := httpGet(t, base+"/files/"+url.PathEscape(filepath.Base(d.Multi))+"/"+strings.Join(segs, "/"))
		if !bytes.Equal(got, want) {
			t.Errorf("%s over HTTP: %d bytes, differ from the original's %d", rel, len(got), len(want))
		}
		if fromMount, err := os.ReadFile(filepath.Join(dir, rel)); err != nil || !bytes.Equal(fromMount, want) {
			t.Errorf("%s from the mount: %v", rel, err)
		}
	}
	b := httpGet(t, base+"/metrics")
	if !bytes.Contains(b, []byte(`swarmfs_read_duration_seconds_count{frontend="fuse"}`)) {
		t.Errorf("no FUSE reads in the metrics:\n%s", b)
	}
	m.StopClean(t)
}
