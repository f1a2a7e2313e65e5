package webseed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// checkAll fetches every piece one at a time, then the whole torrent as one
// run, and compares with the content.
func checkAll(t *testing.T, s *Seed, tt *torrent) {
	t.Helper()
	n := tt.info.NumPieces()
	for i := range n {
		got, handed, err := fetch(t, s, i, 1)
		if err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		if !bytes.Equal(got, tt.pieces(i, 1)) {
			t.Fatalf("piece %d: wrong bytes", i)
		}
		if !slices.Equal(handed, []int{i}) {
			t.Fatalf("piece %d: handed out %v", i, handed)
		}
	}
	got, handed, err := fetch(t, s, 0, n)
	if err != nil {
		t.Fatalf("run of %d pieces: %v", n, err)
	}
	if !bytes.Equal(got, tt.data) {
		t.Fatalf("run of %d pieces: wrong bytes", n)
	}
	if want := seq(0, n); !slices.Equal(handed, want) {
		t.Fatalf("run handed out %v, want %v", handed, want)
	}
}

func seq(first, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = first + i
	}
	return s
}

func TestFetchSingleFile(t *testing.T) {
	tt := makeTorrent(t, "video file.mkv", 1000, true, tfile{size: 10_500})
	srv := newServer(t, tt)
	for _, tc := range []struct{ name, url string }{
		{"dir URL", srv.URL + "/"},
		{"file URL", srv.URL + "/video%20file.mkv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSeed(t, tc.url, tt.layout(t), Config{})
			checkAll(t, s, tt)
			st := s.Stats()
			if st.State != Active || st.Bytes != 2*int64(len(tt.data)) || st.Requests != int64(tt.info.NumPieces()+1) || st.TTFB <= 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	// Every request asked for exactly the piece's range of the one file.
	for _, u := range srv.reqs() {
		if u != "/video%20file.mkv" {
			t.Errorf("request for %s", u)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.conns != 2 {
		t.Errorf("%d connections for 2 seeds fetching one piece at a time: keep-alive lost", srv.conns)
	}
	if srv.ranges[10] != "bytes=10000-10499" || srv.ranges[11] != "bytes=0-10499" {
		t.Errorf("ranges %q, %q", srv.ranges[10], srv.ranges[11])
	}
}

func multiTorrent(t testing.TB) *torrent {
	return makeTorrent(t, "Ünï torrent", 1024, false,
		tfile{path: []string{"big"}, size: 2500}, // spans three pieces
		tfile{path: []string{"empty"}, size: 0},
		tfile{path: []string{"s1"}, size: 100}, // s1..s3 and odd share piece 2
		tfile{path: []string{"sub dir", "s2"}, size: 1},
		tfile{path: []string{"s3"}, size: 99},
		tfile{path: []string{"odd", "50% #1 ?.bin"}, size: 5000},
	)
}

func TestFetchMultiFile(t *testing.T) {
	tt := multiTorrent(t)
	srv := newServer(t, tt)
	s := newSeed(t, srv.URL+"/mirror/", tt.layout(t), Config{})
	files := make(map[string][]byte)
	for k, v := range tt.files {
		files["/mirror"+k] = v
	}
	tt.files = files
	checkAll(t, s, tt)
	seen := make(map[string]bool)
	for _, u := range srv.reqs() {
		seen[u] = true
	}
	want := []string{
		"/mirror/%C3%9Cn%C3%AF%20torrent/big",
		"/mirror/%C3%9Cn%C3%AF%20torrent/s1",
		"/mirror/%C3%9Cn%C3%AF%20torrent/sub%20dir/s2",
		"/mirror/%C3%9Cn%C3%AF%20torrent/s3",
		"/mirror/%C3%9Cn%C3%AF%20torrent/odd/50%25%20%231%20%3F.bin",
	}
	for _, u := range want {
		if !seen[u] {
			t.Errorf("no request for %s", u)
		}
		delete(seen, u)
	}
	if len(seen) != 0 {
		t.Errorf("unexpected requests (the empty file is never asked for): %v", seen)
	}
}

// TestFetchPadFiles checks that BEP 47 pad files are zeros and never asked
// for (the server would fail them).
func TestFetchPadFiles(t *testing.T) {
	tt := makeTorrent(t, "p", 64, false,
		tfile{path: []string{"a"}, size: 40},
		tfile{path: []string{".pad", "24"}, size: 24, attr: "p"},
		tfile{path: []string{"b"}, size: 100},
		tfile{path: []string{".pad", "28"}, size: 28, attr: "p"},
	)
	srv := newServer(t, tt)
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if bytes.Contains([]byte(r.URL.Path), []byte(".pad")) {
			http.Error(w, "no pads here", http.StatusInternalServerError)
			return true
		}
		return false
	})
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
	checkAll(t, s, tt)
	for _, u := range srv.reqs() {
		if bytes.Contains([]byte(u), []byte(".pad")) {
			t.Errorf("pad file requested: %s", u)
		}
	}
}

// TestFetchParallelBounded checks a run over many files: every byte right,
// pieces handed out in order, at most MaxParallel requests at once, and no
// more connections than MaxConnsPerHost even when MaxParallel asks for more.
func TestFetchParallelBounded(t *testing.T) {
	var files []tfile
	for i := range 40 {
		files = append(files, tfile{path: []string{"f" + strconv.Itoa(i)}, size: 97 + i})
	}
	tt := makeTorrent(t, "many", 512, false, files...)
	for _, tc := range []struct{ parallel, conns, want int }{{3, 8, 3}, {8, 2, 2}} {
		srv := newServer(t, tt)
		srv.setHook(func(http.ResponseWriter, *http.Request) bool {
			time.Sleep(2 * time.Millisecond) // let requests overlap
			return false
		})
		client := NewClient(ClientConfig{MaxConnsPerHost: tc.conns})
		t.Cleanup(client.CloseIdleConnections)
		s := newSeed(t, srv.URL+"/", tt.layout(t), Config{Client: client, MaxParallel: tc.parallel})
		got, handed, err := fetch(t, s, 0, tt.info.NumPieces())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tt.data) || !slices.Equal(handed, seq(0, tt.info.NumPieces())) {
			t.Fatalf("parallel %d: wrong bytes or order %v", tc.parallel, handed)
		}
		if m := srv.maxInflight(); m > tc.want || m < 2 {
			t.Errorf("parallel %d, conns %d: %d requests at once, want 2..%d", tc.parallel, tc.conns, m, tc.want)
		}
	}
}

func TestFetchTLS(t *testing.T) {
	tt := multiTorrent(t)
	srv := newTLSServer(t, tt)
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig
	client := NewClient(ClientConfig{TLSConfig: tlsConf})
	t.Cleanup(client.CloseIdleConnections)
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{Client: client})
	checkAll(t, s, tt)

	// Without the test CA, the handshake fails: a transient error.
	plain := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
	if _, _, err := fetch(t, plain, 0, 1); KindOf(err) != Transient {
		t.Errorf("untrusted certificate: %v, want a transient error", err)
	}
}

// TestFetchRedirect checks that redirects are followed with the Range kept,
// and that a chain longer than MaxRedirects is a Bad error.
func TestFetchRedirect(t *testing.T) {
	tt := makeTorrent(t, "r", 1000, true, tfile{size: 5000})
	srv := newServer(t, tt)
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if n, err := strconv.Atoi(r.URL.Query().Get("hops")); err == nil {
			to := "/r"
			if n > 1 {
				to = "/loop?hops=" + strconv.Itoa(n-1)
			}
			http.Redirect(w, r, to, http.StatusFound)
			return true
		}
		return false
	})
	client := NewClient(ClientConfig{MaxRedirects: 3})
	t.Cleanup(client.CloseIdleConnections)
	ok := newSeed(t, srv.URL+"/loop?hops=3", tt.layout(t), Config{Client: client})
	checkAll(t, ok, tt)
	srv.mu.Lock()
	for i, u := range srv.requests {
		// Range survives each hop (a 200 of the whole file would also pass
		// checkAll, by skipping).
		if want := fmt.Sprintf("bytes=%d-%d", i/4*1000, i/4*1000+999); i < 20 && srv.ranges[i] != want {
			t.Errorf("request %d (%s): Range %q, want %q", i, u, srv.ranges[i], want)
		}
	}
	srv.mu.Unlock()

	bad := newSeed(t, srv.URL+"/loop?hops=4", tt.layout(t), Config{Client: client})
	_, handed, err := fetch(t, bad, 0, 1)
	if KindOf(err) != Bad || !errors.Is(err, ErrTooManyRedirects) || len(handed) != 0 {
		t.Errorf("4 redirects with a limit of 3: %v", err)
	}
}

func TestFetchArguments(t *testing.T) {
	tt := makeTorrent(t, "a", 100, true, tfile{size: 250})
	s := newSeed(t, "http://127.0.0.1:1/", tt.layout(t), Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		first, count, buf int
	}{{-1, 1, 100}, {0, 0, 100}, {2, 2, 200}, {0, 4, 300}, {0, 3, 249}, {1, 1 << 62, 1}} {
		if err := s.Fetch(ctx, tc.first, tc.count, make([]byte, tc.buf), nil); err == nil || KindOf(err) != 0 {
			t.Errorf("Fetch(%d, %d, %d bytes) = %v, want an argument error", tc.first, tc.count, tc.buf, err)
		}
	}
	if st := s.Stats(); st.Requests != 0 || st.Failures != 0 {
		t.Errorf("argument errors counted: %+v", st)
	}
}

// TestFetchPiecesIntoCallerBuffers: FetchPieces reads the body straight
// into each piece's own buffer (the engine hands them on without a copy):
// every piece handed out is its buffer, byte-exact, for a run inside one
// file and a run across files and a pad file, with buffers longer than
// their pieces (pooled ones).
func TestFetchPiecesIntoCallerBuffers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		single bool
		files  []tfile
	}{
		{"one file", true, []tfile{{size: 10_500}}},
		{"across files", false, []tfile{
			{path: []string{"a"}, size: 1700},
			{path: []string{"pad"}, size: 300, attr: "p"},
			{path: []string{"b"}, size: 2500},
			{path: []string{"c"}, size: 2100},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := makeTorrent(t, "t", 1000, tc.single, tc.files...)
			srv := newServer(t, tt)
			s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
			n := tt.info.NumPieces()
			bufs := make([][]byte, n)
			for i := range bufs {
				bufs[i] = bytes.Repeat([]byte{0xAA}, 1024) // longer than a piece
			}
			var handed []int
			err := s.FetchPieces(t.Context(), 0, n, bufs, nil, func(i int, data []byte) error {
				if len(data) == 0 || &data[0] != &bufs[i][0] || int64(len(data)) != tt.info.PieceLen(i) {
					t.Errorf("piece %d: %d bytes, not its own buffer", i, len(data))
				} else if !bytes.Equal(data, tt.pieces(i, 1)) {
					t.Errorf("piece %d: wrong bytes", i)
				}
				handed = append(handed, i)
				return nil
			})
			if err != nil || !slices.Equal(handed, seq(0, n)) {
				t.Fatalf("handed out %v: %v", handed, err)
			}
			if err := s.FetchPieces(t.Context(), 0, 2, [][]byte{make([]byte, 1000), make([]byte, 999)}, nil, nil); err == nil {
				t.Errorf("a buffer shorter than its piece was taken")
			}
		})
	}
}
