package webseed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// stallAfter returns a hook that sends headers and n bytes of a correct 206
// for piece 2 (bytes 2000-2999), then waits until the client goes away (or
// 10 s, so a broken client cannot hang the test server's Close). n < 0
// stalls before the headers.
func stallAfter(tt *torrent, n int) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if n >= 0 {
			w.Header().Set("Content-Range", "bytes 2000-2999/5000")
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(tt.data[2000 : 2000+n])
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return true
	}
}

// TestCancelStopsFetch checks that cancelling the context ends a fetch
// waiting on a silent server at once, returns the context's error, and does
// not count against the seed.
func TestCancelStopsFetch(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	for _, n := range []int{-1, 0, 500} {
		t.Run(fmt.Sprintf("after %d bytes", n), func(t *testing.T) {
			srv := newServer(t, tt)
			srv.setHook(stallAfter(tt, n))
			s := newSeed(t, srv.URL+"/", tt.layout(t), Config{ProgressTimeout: time.Minute})
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(100*time.Millisecond, cancel)
			t0 := time.Now()
			err := s.Fetch(ctx, 2, 1, make([]byte, 1000), nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			if d := time.Since(t0); d > time.Second {
				t.Errorf("cancel took %v to stop the fetch", d-100*time.Millisecond)
			}
			if st := s.Stats(); st.Failures != 0 || st.ConsecutiveFailures != 0 || !s.Ready(time.Now()) {
				t.Errorf("a cancelled fetch counted against the seed: %+v", st)
			}
		})
	}
}

// TestBytesCountedAsTheyArrive: a body's bytes count in Stats as they
// arrive, not when the response completes: a response that stalls and is
// cut short (a run the engine withdrew after a seek, which streaming does
// all the time) counted nothing before, and `swarmfs status` showed a web
// seed that had served megabytes as having sent none.
func TestBytesCountedAsTheyArrive(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	srv := newServer(t, tt)
	srv.setHook(stallAfter(tt, 500))
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{ProgressTimeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Fetch(ctx, 2, 1, make([]byte, 1000), nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Bytes < 500 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.Stats().Bytes; got != 500 {
		t.Errorf("%d bytes counted while the response stalls after 500", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if got := s.Stats().Bytes; got != 500 {
		t.Errorf("%d bytes counted after the cut, want 500", got)
	}
}

// TestCancelStopsParallelFetch checks the same for a run over several
// files, whose requests run in goroutines: all of them end before Fetch
// returns (goleak would see one left behind).
func TestCancelStopsParallelFetch(t *testing.T) {
	tt := makeTorrent(t, "t", 1000, false,
		tfile{path: []string{"a"}, size: 700},
		tfile{path: []string{"b"}, size: 700},
		tfile{path: []string{"c"}, size: 700},
	)
	srv := newServer(t, tt)
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/t/a" {
			return false // a is served, b and c stall
		}
		<-r.Context().Done()
		return true
	})
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{ProgressTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	var handed []int
	err := s.Fetch(ctx, 0, 3, make([]byte, 2100), func(i int, _ []byte) error { handed = append(handed, i); return nil })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > time.Second {
		t.Fatalf("error %v after %v", err, time.Since(t0))
	}
	if len(handed) != 0 {
		t.Errorf("pieces %v handed out; piece 0 needs b", handed)
	}
}

// TestStall checks that a server that stops sending, before or during the
// body, fails the fetch as Transient after ProgressTimeout, while a server
// that sends slowly but steadily is not cut off.
func TestStall(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	const timeout = 150 * time.Millisecond
	for _, n := range []int{-1, 500} {
		t.Run(fmt.Sprintf("after %d bytes", n), func(t *testing.T) {
			srv := newServer(t, tt)
			srv.setHook(stallAfter(tt, n))
			s := newSeed(t, srv.URL+"/", tt.layout(t), Config{ProgressTimeout: timeout})
			t0 := time.Now()
			err := s.Fetch(t.Context(), 2, 1, make([]byte, 1000), nil)
			if KindOf(err) != Transient || !errors.Is(err, ErrStalled) {
				t.Fatalf("error %v, want Transient with ErrStalled", err)
			}
			if d := time.Since(t0); d < timeout || d > timeout+time.Second {
				t.Errorf("stall detected after %v, want about %v", d, timeout)
			}
		})
	}
	t.Run("slow but steady", func(t *testing.T) {
		srv := newServer(t, tt)
		srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Range", "bytes 2000-2999/5000")
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusPartialContent)
			for i := 0; i < 1000; i += 100 { // 10 writes, 40 ms apart: 400 ms in all
				w.Write(tt.data[2000+i : 2100+i])
				w.(http.Flusher).Flush()
				time.Sleep(40 * time.Millisecond)
			}
			return true
		})
		s := newSeed(t, srv.URL+"/", tt.layout(t), Config{ProgressTimeout: timeout})
		got, _, err := fetch(t, s, 2, 1)
		if err != nil || string(got) != string(tt.pieces(2, 1)) {
			t.Fatalf("slow fetch: %v", err)
		}
	})
}
