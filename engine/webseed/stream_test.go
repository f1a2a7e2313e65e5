package webseed

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestFetchDeliversAsBodyArrives: a run fetched with one request hands
// each piece on as soon as its bytes are in, not when the whole body is:
// the server sends the first piece and holds the rest until the caller has
// it (or a few seconds pass, when the test fails).
func TestFetchDeliversAsBodyArrives(t *testing.T) {
	const pieceLen = 64 << 10
	tt := makeTorrent(t, "f.bin", pieceLen, true, tfile{size: 4 * pieceLen})
	srv := newServer(t, tt)
	release := make(chan struct{})
	var timedOut atomic.Bool
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		b := tt.files["/f.bin"]
		w.Header().Set("Content-Range", "bytes 0-"+strconv.Itoa(len(b)-1)+"/"+strconv.Itoa(len(b)))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(b[:pieceLen])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(2 * time.Second):
			timedOut.Store(true)
		case <-r.Context().Done():
		}
		w.Write(b[pieceLen:])
		return true
	})
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
	buf := make([]byte, 4*pieceLen)
	var early bool
	var got []int
	err := s.Fetch(context.Background(), 0, 4, buf, func(i int, data []byte) error {
		if i == 0 {
			early = !timedOut.Load()
			close(release)
		}
		if !bytes.Equal(data, tt.pieces(i, 1)) {
			t.Errorf("piece %d: wrong bytes", i)
		}
		got = append(got, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !early {
		t.Error("piece 0 was handed on only after the whole body arrived")
	}
	if len(got) != 4 || got[0] != 0 || got[3] != 3 {
		t.Errorf("pieces %v, want 0..3 in order", got)
	}
}

// TestFetchCallerErrorMidBody: an error of the piece callback while the
// body is still arriving ends the fetch with that error, as is, and is
// not the seed's failure.
func TestFetchCallerErrorMidBody(t *testing.T) {
	const pieceLen = 64 << 10
	tt := makeTorrent(t, "f.bin", pieceLen, true, tfile{size: 4 * pieceLen})
	srv := newServer(t, tt)
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
	errStop := errors.New("stop")
	err := s.Fetch(context.Background(), 0, 4, make([]byte, 4*pieceLen), func(i int, data []byte) error {
		if i == 1 {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Fatalf("error %v, want the callback's", err)
	}
	if st := s.Stats(); st.Failures != 0 || st.State != Active {
		t.Fatalf("stats %+v after the caller stopped", st)
	}
}

// TestFetchPiecesReportsArrival: FetchPieces tells arrived of a piece's
// bytes while the piece is still incomplete (so the engine can hash it as
// it arrives): the server sends half of piece 0 and holds the rest until
// arrived has seen that half (or a few seconds pass, when the test fails);
// each report grows within its piece, stays short of it, and comes before
// the piece itself.
func TestFetchPiecesReportsArrival(t *testing.T) {
	const pieceLen = 64 << 10
	tt := makeTorrent(t, "f.bin", pieceLen, true, tfile{size: 3 * pieceLen})
	srv := newServer(t, tt)
	release := make(chan struct{})
	var timedOut atomic.Bool
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		b := tt.files["/f.bin"]
		w.Header().Set("Content-Range", "bytes 0-"+strconv.Itoa(len(b)-1)+"/"+strconv.Itoa(len(b)))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(b[:pieceLen/2])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(2 * time.Second):
			timedOut.Store(true)
		case <-r.Context().Done():
		}
		w.Write(b[pieceLen/2:])
		return true
	})
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
	bufs := [][]byte{make([]byte, pieceLen), make([]byte, pieceLen), make([]byte, pieceLen)}
	cur, seen, early := -1, 0, false
	released := false
	err := s.FetchPieces(t.Context(), 0, 3, bufs, func(i, n int) {
		if i != cur {
			cur, seen = i, 0
		}
		if n <= seen || n >= pieceLen {
			t.Errorf("piece %d: %d bytes in after %d", i, n, seen)
		}
		if !bytes.Equal(bufs[i][:n], tt.pieces(i, 1)[:n]) {
			t.Errorf("piece %d: wrong bytes in its first %d", i, n)
		}
		seen = n
		if i == 0 && n >= pieceLen/2 && !released {
			early = !timedOut.Load()
			released = true
			close(release)
		}
	}, func(i int, data []byte) error {
		if i == cur && seen >= len(data) {
			t.Errorf("piece %d handed out before its arrival reports ended", i)
		}
		cur, seen = i, len(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !early {
		t.Error("arrived did not hear of the first half of piece 0 while the rest was held back")
	}
}
