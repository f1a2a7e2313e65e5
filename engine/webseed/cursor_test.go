package webseed

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// wholeFiles makes srv ignore Range, as Python's http.server does: every
// request gets 200 and the whole file. ended counts the responses whose
// handler has returned. With hold, a handler returns only once its
// connection is closed (a small file's bytes all fit in the sockets'
// buffers, so having written them says nothing); a body read to its end
// then never frees its connection, so tests with hold never read a file
// to its end.
func wholeFiles(srv *server, hold bool) (ended func() int) {
	var mu sync.Mutex
	n := 0
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		defer func() {
			mu.Lock()
			n++
			mu.Unlock()
		}()
		b, ok := srv.tt.files[r.URL.Path]
		if !ok {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		for off := 0; off < len(b); off += 512 {
			if _, err := w.Write(b[off:min(off+512, len(b))]); err != nil {
				return true
			}
		}
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
		return true
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// TestIgnoredRange: a server that answers ranges with the whole file is
// used wherever the range is, without a strike, and a run that continues
// where the last one ended reads on from the same body.
func TestIgnoredRange(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	srv := newServer(t, tt)
	wholeFiles(srv, false)
	s := newSeed(t, srv.URL+"/f", tt.layout(t), Config{})
	for i, tc := range []struct{ first, count, requests int }{
		{3, 1, 1}, // deep in the file: bytes 0-2999 are read and dropped
		{4, 1, 1}, // on from the parked body
		{1, 2, 2}, // behind it: a new request
		{3, 2, 2}, // on from that one: bytes 3000-4999
		{0, 1, 3},
	} {
		got, handed, err := fetch(t, s, tc.first, tc.count)
		if err != nil || !bytes.Equal(got, tt.pieces(tc.first, tc.count)) || len(handed) != tc.count {
			t.Fatalf("fetch %d (%d+%d): %v, pieces %v", i, tc.first, tc.count, err, handed)
		}
		if n := len(srv.reqs()); n != tc.requests {
			t.Errorf("after fetch %d: %d requests, want %d", i, n, tc.requests)
		}
	}
	st := s.Stats()
	if !st.NoRanges || st.Strikes != 0 || st.Failures != 0 || st.State != Active {
		t.Errorf("stats %+v: want NoRanges, no strike, no failure, active", st)
	}
}

// TestIgnoredRangeReadsOnce: a file read in order, run after run, from a
// server that ignores Range comes over one request, each byte once.
func TestIgnoredRangeReadsOnce(t *testing.T) {
	const pieces = 64
	tt := makeTorrent(t, "f", 16<<10, true, tfile{size: pieces*16<<10 - 100})
	srv := newServer(t, tt)
	wholeFiles(srv, false)
	s := newSeed(t, srv.URL+"/f", tt.layout(t), Config{})
	for p := 0; p < pieces; p += 3 {
		n := min(3, pieces-p)
		got, _, err := fetch(t, s, p, n)
		if err != nil || !bytes.Equal(got, tt.pieces(p, n)) {
			t.Fatalf("pieces %d+%d: %v", p, n, err)
		}
	}
	if n := len(srv.reqs()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if st := s.Stats(); st.Bytes != int64(len(tt.data)) {
		t.Errorf("%d bytes received, want the file's %d", st.Bytes, len(tt.data))
	}
}

// TestIgnoredRangeParkedBodyEnds: a parked body is closed after
// CursorIdle, by Close, and when a run needs another file; a run cut short
// leaves nothing parked.
func TestIgnoredRangeParkedBodyEnds(t *testing.T) {
	tt := makeTorrent(t, "t", 1000, false,
		tfile{path: []string{"a"}, size: 5000},
		tfile{path: []string{"b"}, size: 5000})
	waitEnded := func(t *testing.T, ended func() int, want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ended() < want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d responses ended, want %d: a parked body was left open", ended(), want)
			}
		}
	}
	fetchOK := func(t *testing.T, s *Seed, first, count int) {
		t.Helper()
		if got, _, err := fetch(t, s, first, count); err != nil || !bytes.Equal(got, tt.pieces(first, count)) {
			t.Fatalf("pieces %d+%d: %v", first, count, err)
		}
	}
	// A server holding each response open until the client closes it.
	setup := func(t *testing.T, cfg Config) (*server, func() int, *Seed) {
		srv := newServer(t, tt)
		ended := wholeFiles(srv, true)
		return srv, ended, newSeed(t, srv.URL+"/", tt.layout(t), cfg)
	}
	t.Run("idle", func(t *testing.T) {
		srv, ended, s := setup(t, Config{CursorIdle: 50 * time.Millisecond})
		fetchOK(t, s, 0, 1)
		waitEnded(t, ended, 1)
		fetchOK(t, s, 1, 1) // the parked body is gone: a new request
		if n := len(srv.reqs()); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
	t.Run("close", func(t *testing.T) {
		_, ended, s := setup(t, Config{})
		fetchOK(t, s, 1, 1)
		if ended() != 0 {
			t.Fatal("the response ended: nothing was parked")
		}
		s.Close()
		waitEnded(t, ended, 1)
	})
	t.Run("other file", func(t *testing.T) {
		srv, ended, s := setup(t, Config{})
		fetchOK(t, s, 1, 1) // file a, parked at 2000
		fetchOK(t, s, 6, 1) // file b: a's body is closed first
		waitEnded(t, ended, 1)
		fetchOK(t, s, 2, 1) // a again: a new request
		if n := len(srv.reqs()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
	t.Run("cut short", func(t *testing.T) {
		srv, ended, s := setup(t, Config{})
		stop := errors.New("enough")
		buf := make([]byte, 2000)
		err := s.Fetch(t.Context(), 0, 2, buf, func(int, []byte) error { return stop })
		if !errors.Is(err, stop) {
			t.Fatalf("Fetch: %v, want the callback's error", err)
		}
		waitEnded(t, ended, 1)
		fetchOK(t, s, 1, 1)
		if n := len(srv.reqs()); n != 2 {
			t.Errorf("%d requests, want 2: a body cut short was parked", n)
		}
		if st := s.Stats(); st.Failures != 0 {
			t.Errorf("%d failures, want 0", st.Failures)
		}
	})
}

// TestIgnoredRangeServerClosesParked: a parked body the server ended
// meanwhile is replaced by a new request, not counted as a failure.
func TestIgnoredRangeServerClosesParked(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	srv := newServer(t, tt)
	var mu sync.Mutex
	calls := 0
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if !first {
			w.Write(tt.data) // whole file, Content-Length set
			return true
		}
		// The first response stops after 2000 of its 5000 bytes and
		// closes the connection, as a server's idle timeout would.
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return true
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
		rw.Write(tt.data[:2000])
		rw.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		return true
	})
	s := newSeed(t, srv.URL+"/f", tt.layout(t), Config{})
	for p := range 3 {
		got, _, err := fetch(t, s, p, 1)
		if err != nil || !bytes.Equal(got, tt.pieces(p, 1)) {
			t.Fatalf("piece %d: %v", p, err)
		}
	}
	if n := len(srv.reqs()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if st := s.Stats(); st.Failures != 0 || st.State != Active {
		t.Errorf("stats %+v: want no failure", st)
	}
}

// TestIgnoredRangeCancel: cancelling a fetch that skips towards its range
// ends it at once.
func TestIgnoredRangeCancel(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	srv := newServer(t, tt)
	release := make(chan struct{})
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", "5000")
		w.Write(tt.data[:100])
		w.(http.Flusher).Flush()
		<-release // stuck in the bytes before the range
		return true
	})
	defer close(release)
	s := newSeed(t, srv.URL+"/f", tt.layout(t), Config{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := s.Fetch(ctx, 4, 1, make([]byte, 1000), nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("Fetch: %v after %v, want context.Canceled at once", err, time.Since(start))
	}
	// The skip's time is the 100 ms until the cancel, less the moments
	// between arming it and the request's start (97.8 ms once in CI); the
	// first 100 bytes themselves come within a millisecond or two.
	if st := s.Stats(); st.Failures != 0 || st.TTFB < 50*time.Millisecond {
		t.Errorf("stats %+v: want no failure and the skip's time as a time to first byte", st)
	}
}

// TestIgnoredRangeOneAtATime: a server that ignores Range and serves one
// connection at a time (as simple servers do) is not left waiting behind
// a parked body while another request of the seed's waits for it.
func TestIgnoredRangeOneAtATime(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	srv := newServer(t, tt)
	var one sync.Mutex // the server's only thread
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		one.Lock()
		defer one.Unlock()
		w.Header().Set("Content-Length", strconv.Itoa(len(tt.data)))
		w.Write(tt.data)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	})
	s := newSeed(t, srv.URL+"/f", tt.layout(t), Config{})
	errs := make(chan error, 2)
	start := time.Now()
	for _, p := range []int{1, 3} {
		go func() {
			got, _, err := fetch(t, s, p, 1)
			if err == nil && !bytes.Equal(got, tt.pieces(p, 1)) {
				err = errors.New("bytes differ")
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two fetches took %v: one waited behind the other's parked body", d)
	}
}

// TestWholeFileAnswerKeepsRanges: a 200 to a request for a whole file
// (allowed whatever the server does with ranges) does not mark the seed
// as ignoring Range.
func TestWholeFileAnswerKeepsRanges(t *testing.T) {
	tt := makeTorrent(t, "t", 1000, false,
		tfile{path: []string{"a"}, size: 2000},
		tfile{path: []string{"b"}, size: 3000})
	srv := newServer(t, tt)
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Range") != "bytes=0-1999" {
			return false // a part of a file: a 206
		}
		w.Write(tt.files[r.URL.Path]) // all of a: a 200
		return true
	})
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
	for _, p := range []int{0, 3} {
		if got, _, err := fetch(t, s, p, 2); err != nil || !bytes.Equal(got, tt.pieces(p, 2)) {
			t.Fatalf("pieces %d+2: %v", p, err)
		}
	}
	if st := s.Stats(); !st.Answered || st.NoRanges {
		t.Errorf("stats %+v: want answered, ranges honoured", st)
	}
}
