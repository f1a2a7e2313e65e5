package webseed

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// TestFetchLiars checks that a response that does not carry exactly the
// range asked for is refused, classified, and that none of its bytes reach
// the caller. The seed asks for piece 2 of a 5000-byte file in pieces of
// 1000: bytes 2000-2999.
func TestFetchLiars(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 5000})
	data := tt.data
	good := data[2000:3000]
	partial := func(w http.ResponseWriter, cr string, body []byte) {
		w.Header().Set("Content-Range", cr)
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body)
	}
	tests := []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request)
		kind  Kind
		cause error
	}{
		{"start off by one", func(w http.ResponseWriter, r *http.Request) {
			partial(w, "bytes 2001-3000/5000", data[2001:3001])
		}, Bad, ErrRangeMismatch},
		{"end short", func(w http.ResponseWriter, r *http.Request) {
			partial(w, "bytes 2000-2998/5000", data[2000:2999])
		}, Bad, ErrRangeMismatch},
		{"other total", func(w http.ResponseWriter, r *http.Request) {
			partial(w, "bytes 2000-2999/5001", good)
		}, FileGone, ErrSizeMismatch},
		{"junk Content-Range", func(w http.ResponseWriter, r *http.Request) {
			partial(w, "bytes 2000-2999/5000x", good)
		}, Bad, ErrRangeMismatch},
		{"no Content-Range", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusPartialContent)
			w.Write(good)
		}, Bad, ErrRangeMismatch},
		{"two Content-Ranges", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Content-Range", "bytes 2000-2999/5000")
			w.Header().Add("Content-Range", "bytes 2000-2999/5000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(good)
		}, Bad, ErrRangeMismatch},
		{"multipart", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "multipart/byteranges; boundary=x")
			w.WriteHeader(http.StatusPartialContent)
			fmt.Fprintf(w, "--x\r\nContent-Range: bytes 2000-2999/5000\r\n\r\n%s\r\n--x--\r\n", good)
		}, Bad, ErrRangeMismatch},
		{"Content-Length too long", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1001")
			partial(w, "bytes 2000-2999/5000", data[2000:3001])
		}, Bad, ErrRangeMismatch},
		{"long chunked body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 2000-2999/5000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(good)
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Write([]byte("more"))
		}, Bad, ErrLongBody},
		{"short body", func(w http.ResponseWriter, r *http.Request) {
			conn, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(rw, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2000-2999/5000\r\nContent-Length: 1000\r\n\r\n%s", good[:600])
			rw.Flush()
		}, Transient, ErrShortBody},
		{"short body, Content-Length says so", func(w http.ResponseWriter, r *http.Request) {
			partial(w, "bytes 2000-2999/5000", good[:999]) // small write: ServeMux adds Content-Length
		}, Bad, ErrRangeMismatch},
		{"200 with another file", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "4999")
			w.Write(data[:4999])
		}, FileGone, ErrSizeMismatch},
		{"200 with a short chunked body", func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			w.Write(data[:2500])
		}, Transient, ErrShortBody},
		{"gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			partial(w, "bytes 2000-2999/5000", good)
		}, Bad, ErrRangeMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tt)
			srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
				tc.serve(w, r)
				return true
			})
			s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
			buf := make([]byte, 1000)
			handed := false
			err := s.Fetch(t.Context(), 2, 1, buf, func(int, []byte) error { handed = true; return nil })
			if KindOf(err) != tc.kind || !errors.Is(err, tc.cause) {
				t.Fatalf("error %v, want kind %v with %v", err, tc.kind, tc.cause)
			}
			if handed {
				t.Error("a piece was handed out")
			}
			st := s.Stats()
			if wantStrikes := map[bool]int{true: 1, false: 0}[tc.kind == Bad]; st.Strikes != wantStrikes {
				t.Errorf("strikes %d, want %d", st.Strikes, wantStrikes)
			}
		})
	}
}

// TestParseContentRange checks the strict grammar: only "bytes a-b/n",
// "bytes a-b/*" and "bytes */n" with plain digits.
func TestParseContentRange(t *testing.T) {
	ok := map[string]contentRange{
		"bytes 0-0/1":          {0, 0, 1},
		"bytes 2000-2999/5000": {2000, 2999, 5000},
		"BYTES 5-9/*":          {5, 9, -1},
		"bytes */77":           {-1, -1, 77},
		" bytes 1-2/3 ":        {1, 2, 3},
		"bytes 0-999999999999999998/999999999999999999": {0, 999999999999999998, 999999999999999999},
	}
	for s, want := range ok {
		got, err := parseContentRange(s)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"", "bytes", "bytes 0-9", "bytes=0-9/10", "items 0-9/10", "bytes 9-0/10",
		"bytes 0-10/10", "bytes +1-5/10", "bytes -1-5/10", "bytes 1-+5/10", "bytes 0-9/+10",
		"bytes 0-9/10 junk", "bytes 0 -9/10", "bytes */*", "bytes 0-9/1x", "bytes x-9/10",
		"bytes 0-9223372036854775807/*", "bytes 0-1/9223372036854775808", "bytes 0-9//10",
		"bytes  0-9/10", "bytes 0-9-10/20",
	} {
		if cr, err := parseContentRange(s); err == nil {
			t.Errorf("%q accepted as %+v", s, cr)
		}
	}
}
