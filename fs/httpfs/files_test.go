package httpfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// start serves host on loopback for the test.
func start(t testing.TB, host Host, opts Options) *httptest.Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s := New(host, opts)
	ts := httptest.NewUnstartedServer(s)
	s.ConfigureServer(ts.Config)
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}

// closeIdle closes the connections of the test's client (http.DefaultClient),
// whose keep-alive connections keep their last reader for the next
// request, and waits for ft's readers to be closed.
func closeIdle(t *testing.T, ft *fakeTorrent) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, "the readers of idle connections closed", func() bool { return ft.open() == 0 })
}

// fileURLOf is the URL of a file of the sample torrent.
func fileURLOf(ts *httptest.Server, folder, p string) string {
	return ts.URL + "/files/" + escapePath(append([]string{folder}, strings.Split(p, "/")...)...)
}

func get(t *testing.T, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func sampleServer(t *testing.T) (*httptest.Server, *fakeTorrent, map[string][]byte) {
	files := sampleFiles()
	ft := newFakeTorrent("sample ✓", 256<<10, files...)
	return start(t, newFakeHost(ft), Options{}), ft, fileData(files)
}

func TestWholeFiles(t *testing.T) {
	ts, ft, data := sampleServer(t)
	for p, want := range data {
		resp, got := get(t, fileURLOf(ts, "sample ✓", p))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			t.Errorf("%q: %s, %d bytes, want 200 and %d bytes equal", p, resp.Status, len(got), len(want))
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
			t.Errorf("%q: Content-Length %q, want %d", p, cl, len(want))
		}
	}
	closeIdle(t, ft)
	if ft.opened.Load() != int32(len(data)-1) {
		t.Errorf("%d readers opened for %d files (one empty): want one per non-empty file", ft.opened.Load(), len(data))
	}
}

func TestRanges(t *testing.T) {
	ts, _, data := sampleServer(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, p := range []string{"big.bin", "video/clip.mp4", "deep/a/b/c/d/leaf.txt", "nul.bin", "odd names/ünïcødé ✓.txt"} {
		want := data[p]
		n := int64(len(want))
		u := fileURLOf(ts, "sample ✓", p)
		type rc struct {
			spec       string
			start, end int64 // inclusive
		}
		var cases []rc
		for range 12 {
			a := rng.Int64N(n)
			b := a + rng.Int64N(n-a)
			cases = append(cases, rc{fmt.Sprintf("bytes=%d-%d", a, b), a, b})
		}
		sfx := 1 + rng.Int64N(n)
		cases = append(cases,
			rc{fmt.Sprintf("bytes=-%d", sfx), n - sfx, n - 1},
			rc{fmt.Sprintf("bytes=%d-", n-1), n - 1, n - 1},
			rc{"bytes=0-", 0, n - 1},
			rc{fmt.Sprintf("bytes=0-%d", n+1000), 0, n - 1},
		)
		for _, c := range cases {
			resp, got := get(t, u, "Range", c.spec)
			wantCR := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, n)
			if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR || !bytes.Equal(got, want[c.start:c.end+1]) {
				t.Errorf("%s %s: %s, Content-Range %q (want %q), %d bytes, equal %v", p, c.spec, resp.Status,
					resp.Header.Get("Content-Range"), wantCR, len(got), bytes.Equal(got, want[c.start:c.end+1]))
			}
		}
		// Several ranges: a multipart/byteranges body.
		a, b := rng.Int64N(n/2), n/2+rng.Int64N(n/2)
		resp, body := get(t, u, "Range", fmt.Sprintf("bytes=0-0,%d-%d,-3", a, a+(b-a)/2))
		mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != http.StatusPartialContent || mt != "multipart/byteranges" {
			t.Fatalf("%s multi-range: %s, %s", p, resp.Status, mt)
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		wantParts := [][2]int64{{0, 0}, {a, a + (b-a)/2}, {n - 3, n - 1}}
		for i, w := range wantParts {
			part, err := mr.NextPart()
			if err != nil {
				t.Fatalf("%s part %d: %v", p, i, err)
			}
			got, _ := io.ReadAll(part)
			if cr := part.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", w[0], w[1], n) || !bytes.Equal(got, want[w[0]:w[1]+1]) {
				t.Errorf("%s part %d: Content-Range %q, %d bytes, equal %v", p, i, cr, len(got), bytes.Equal(got, want[w[0]:w[1]+1]))
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Errorf("%s: more parts than asked: %v", p, err)
		}
		// Unsatisfiable.
		resp, _ = get(t, u, "Range", fmt.Sprintf("bytes=%d-", n))
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", n) {
			t.Errorf("%s past the end: %s, Content-Range %q", p, resp.Status, resp.Header.Get("Content-Range"))
		}
	}
}

func TestHeadersAndConditionals(t *testing.T) {
	ts, ft, data := sampleServer(t)
	u := fileURLOf(ts, "sample ✓", "video/clip.mp4")
	resp, err := http.Head(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data["video/clip.mp4"])) ||
		resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("Accept-Ranges") != "bytes" ||
		resp.Header.Get("Last-Modified") != fakeTime.Format(http.TimeFormat) || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("HEAD: %s, length %d, headers %v", resp.Status, resp.ContentLength, resp.Header)
	}
	if ft.opened.Load() != 0 {
		t.Errorf("HEAD opened %d readers, want none", ft.opened.Load())
	}
	// If-Range with the current ETag: the range; with another: the whole file.
	if resp, b := get(t, u, "Range", "bytes=10-19", "If-Range", etag); resp.StatusCode != 206 || len(b) != 10 {
		t.Errorf("If-Range matching: %s, %d bytes", resp.Status, len(b))
	}
	if resp, b := get(t, u, "Range", "bytes=10-19", "If-Range", `"other"`); resp.StatusCode != 200 || len(b) != len(data["video/clip.mp4"]) {
		t.Errorf("If-Range not matching: %s, %d bytes", resp.Status, len(b))
	}
	if resp, _ := get(t, u, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
	if resp, _ := get(t, u, "If-Modified-Since", fakeTime.Add(time.Hour).Format(http.TimeFormat)); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-Modified-Since: %s", resp.Status)
	}
	if resp, _ := get(t, fileURLOf(ts, "sample ✓", "README.txt")); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		resp.Header.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("README.txt: Content-Type %q, CSP %q (a torrent's page must not script this origin)", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
	// The empty file: 200, nothing, no reader.
	before := ft.opened.Load()
	if resp, b := get(t, fileURLOf(ts, "sample ✓", "empty.bin")); resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != 0 {
		t.Errorf("empty file: %s, %d bytes, length %d", resp.Status, len(b), resp.ContentLength)
	}
	if ft.opened.Load() != before {
		t.Errorf("the empty file opened a reader")
	}
	closeIdle(t, ft)
}

// rawGet sends path as it is, with nothing cleaned or re-escaped, and
// returns the status code.
func rawGet(t *testing.T, addr, path string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEscapesRefused(t *testing.T) {
	files := sampleFiles()
	ft := newFakeTorrent("sample", 256<<10, files...)
	ts := start(t, newFakeHost(ft), Options{})
	addr := ts.Listener.Addr().String()
	for _, p := range []string{
		"/files/../etc/passwd",
		"/files/sample/../../etc/passwd",
		"/files/%2e%2e/etc/passwd",
		"/files/sample/%2e%2e/%2e%2e/etc/passwd",
		"/files/sample/%2E%2E/sample/README.txt",
		"/files/sample%2FREADME.txt",
		"/files/sample/deep%2fa/b/c/d/leaf.txt",
		"/files/sample/deep/./a/b/c/d/leaf.txt",
		"/files/sample//README.txt",
		"/files/sample/README.txt%00",
		"/files/sample/README.txt%00.jpg",
		"/files/sample/..%5cREADME.txt",
		"/files/sample/%",
		"/files/sample/" + strings.Repeat("a", 300),
		"/files/sample/" + strings.Repeat("a/", 5000) + "x",
		"/files//etc/passwd",
		"/files/etc/passwd",
		"/playlist/../sample.m3u",
		"/playlist/%2e%2e%2fsample.m3u",
	} {
		code := rawGet(t, addr, p)
		if code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("%.80q: %d, want 400 or 404", p, code)
		}
	}
	// The sanity check: the same server serves what is there.
	if code := rawGet(t, addr, "/files/sample/deep/a/b/c/d/leaf.txt"); code != 200 {
		t.Errorf("leaf.txt: %d", code)
	}
	if code := rawGet(t, addr, "/files/sample/odd%20names/%23%25%26%2A%3F"); code != 200 {
		t.Errorf("odd name: %d", code)
	}
}

// TestDisconnectMidBody: a client that goes away while the server waits
// for the swarm leaves no read waiting and no reader open.
func TestDisconnectMidBody(t *testing.T) {
	files := sampleFiles()
	ft := newFakeTorrent("sample", 256<<10, files...)
	ts := start(t, newFakeHost(ft), Options{})
	info := ft.Info()
	big := info.Files[len(info.Files)-2]
	if big.Path[0] != "big.bin" {
		t.Fatalf("file %v", big.Path)
	}
	// big.bin's pieces past its first are missing: the first fill fits in
	// the connection's send buffer (SendBuffer) and the client's, so the
	// next one waits on the swarm even though the client reads no more.
	first := int(big.Offset/info.PieceLength) + 1
	ft.setHave(first, info.NumPieces(), false)
	for _, rangeHdr := range []string{"", "bytes=0-10,1000-2000,4000000-4000010,5000000-5000010"} {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // on a failure too: a response blocked in a write would hold up the server's Close
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fileURLOf(ts, "sample", "big.bin"), nil)
		if rangeHdr != "" {
			req.Header.Set("Range", rangeHdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if rangeHdr == "" {
			if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "a read waiting on the swarm", func() bool { return ft.waiting.Load() > 0 })
		cancel()
		resp.Body.Close()
		waitFor(t, "every reader closed", func() bool { return ft.open() == 0 && ft.waiting.Load() == 0 })
	}
	if ft.cancelled.Load() < 2 {
		t.Errorf("%d reads cancelled, want 2", ft.cancelled.Load())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListing(t *testing.T) {
	ts, _, _ := sampleServer(t)
	resp, b := get(t, ts.URL+"/files/"+url.PathEscape("sample ✓")+"/odd%20names/", "Accept", "application/json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s", resp.Status, b)
	}
	for _, want := range []string{`"name":"ünïcødé ✓.txt"`, `"name":"#%\u0026*?"`, `"url":"/files/sample%20%E2%9C%93/odd%20names/%23%25\u0026%2A%3F"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("listing lacks %s: %s", want, b)
		}
	}
	resp, b = get(t, ts.URL+"/files/"+url.PathEscape("sample ✓")+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!bytes.Contains(b, []byte(`href="/files/sample%20%E2%9C%93/video/"`)) || bytes.Contains(b, []byte(".pad")) {
		t.Errorf("HTML listing: %s %s", resp.Status, b)
	}
	resp, b = get(t, ts.URL+"/files/", "Accept", "application/json")
	if !bytes.Contains(b, []byte(`"name":"sample ✓","dir":true`)) {
		t.Errorf("root listing: %s %s", resp.Status, b)
	}
	// A folder without its slash redirects to it; a missing one is 404.
	if resp, _ := get(t, ts.URL+"/files/"+url.PathEscape("sample ✓")+"/video"); resp.Request.URL.Path != "/files/sample ✓/video/" {
		t.Errorf("redirect: ended at %s", resp.Request.URL)
	}
	if resp, _ := get(t, ts.URL+"/files/"+url.PathEscape("sample ✓")+"/nothing/"); resp.StatusCode != 404 {
		t.Errorf("missing folder: %s", resp.Status)
	}
}

// TestCloseWaitsForRead: Close may come while ServeContent's multi-range
// goroutine is inside Read; it cancels that read and waits for it before
// closing the torrent's Reader.
func TestCloseWaitsForRead(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	info := ft.Info()
	ft.setHave(0, info.NumPieces(), false)
	s := New(newFakeHost(ft), Options{Logf: t.Logf})
	rs := newReadSeeker(context.Background(), s, ft, info, 0, false)
	done := make(chan error, 1)
	go func() {
		_, err := rs.Read(make([]byte, 10))
		done <- err
	}()
	waitFor(t, "the read to wait", func() bool { return ft.waiting.Load() > 0 })
	if err := rs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("the read succeeded without its piece")
	}
	if ft.closedMidRead.Load() != 0 || ft.open() != 0 {
		t.Errorf("reader closed during its read (%d), %d open", ft.closedMidRead.Load(), ft.open())
	}
	if _, err := rs.Read(make([]byte, 10)); err == nil {
		t.Error("a read after Close succeeded")
	}
}
