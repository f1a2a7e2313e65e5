package webseed

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/anacrolix/missinggo/v2/httptoo"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/, written by
// TestFuzzCorpus -update-corpus, so a plain go test runs every seed.

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// FuzzContentRange checks that parseContentRange never panics, that what it
// accepts is a coherent range, and that missinggo's httptoo parser (which
// panics on malformed input, so it is only an oracle here) reads every
// header we accept the same way.
func FuzzContentRange(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := parseContentRange(s)
		if err != nil {
			if !errors.Is(err, ErrRangeMismatch) {
				t.Fatalf("%q: error %v does not wrap ErrRangeMismatch", s, err)
			}
			return
		}
		switch {
		case cr.First == -1 && cr.Last == -1:
			if cr.Length < 0 {
				t.Fatalf("%q: neither range nor length: %+v", s, cr)
			}
		case cr.First < 0 || cr.First > cr.Last || cr.Length < -1 || (cr.Length >= 0 && cr.Last >= cr.Length):
			t.Fatalf("%q: incoherent %+v", s, cr)
		}
		if !strings.HasPrefix(strings.TrimSpace(s), "bytes ") {
			return // httptoo compares the unit case-sensitively
		}
		var other httptoo.BytesContentRange
		var ok bool
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%q: we accept it, httptoo panics: %v", s, r)
				}
			}()
			other, ok = httptoo.ParseBytesContentRange(s)
		}()
		if !ok || other.First != cr.First || other.Last != cr.Last || other.Length != cr.Length {
			t.Fatalf("%q: ours %+v, httptoo %+v (ok %v)", s, cr, other, ok)
		}
	})
}

// FuzzResponse feeds a raw HTTP response, as a server could send it, through
// the path a fetch takes: http.ReadResponse, checkResponse, readBody. Nothing
// may panic; an accepted response must have described exactly the span
// asked for, and the bytes handed over must be the body's (after the skip
// of a 200).
func FuzzResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, off, n, fileLen int64) {
		// A valid span of a file of at most 1 MiB.
		fileLen = 1 + abs(fileLen)%(1<<20)
		off = abs(off) % fileLen
		n = 1 + abs(n)%(fileLen-off)
		sp := span{Off: off, Len: n, FileLen: fileLen}
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/f", nil)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		p, e := checkResponse(resp.StatusCode, resp.Header, resp.ContentLength, sp, time.Unix(1e9, 0))
		if e != nil {
			if e.Kind < Transient || e.Kind > Bad || e.Err == nil {
				t.Fatalf("bad error %+v", e)
			}
			if e.RetryAfter < 0 && !(e.Kind == RetryAfter && e.Status == http.StatusTooManyRequests) {
				t.Fatalf("negative RetryAfter in %+v", e)
			}
			return
		}
		switch resp.StatusCode {
		case http.StatusPartialContent:
			cr, err := parseContentRange(resp.Header.Get("Content-Range"))
			if err != nil || cr.First != off || cr.Last != off+n-1 || (cr.Length != fileLen && cr.Length != -1) || p.Skip != 0 || !p.CheckEnd {
				t.Fatalf("accepted 206 %+v (%v), plan %+v, for %+v", cr, err, p, sp)
			}
		case http.StatusOK:
			if p.Skip != off || !p.Whole || (resp.ContentLength != -1 && resp.ContentLength != fileLen) {
				t.Fatalf("accepted 200 with length %d, plan %+v, for %+v", resp.ContentLength, p, sp)
			}
		default:
			t.Fatalf("accepted status %d", resp.StatusCode)
		}
		// Read the body through readBody and, separately, all of it: what
		// readBody accepts must be the body's bytes at the skip.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		dst := make([]byte, n)
		err = readBody(bytes.NewReader(body), p, vec{dst}, nil)
		// The same read in small steps, into a buffer in three pieces
		// (as a run of pieces is), reporting progress: the same verdict
		// and bytes, progress growing and short of full.
		dst2, last := make([]byte, n), int64(0)
		cut1, cut2 := n/3, n/3+n/2
		parts := vec{dst2[:cut1], dst2[cut1:cut2], dst2[cut2:]}
		err2 := readBody(iotest.OneByteReader(bytes.NewReader(body)), p, parts, func(k int64) error {
			if k <= last || k >= n {
				t.Fatalf("progress %d after %d, for %d bytes", k, last, n)
			}
			last = k
			return nil
		})
		if (err == nil) != (err2 == nil) || err == nil && !bytes.Equal(dst, dst2) {
			t.Fatalf("readBody with progress: %v, without: %v", err2, err)
		}
		if err != nil {
			return
		}
		if int64(len(body)) < p.Skip+n || !bytes.Equal(dst, body[p.Skip:p.Skip+n]) {
			t.Fatalf("readBody handed over bytes that are not the body's")
		}
		if p.CheckEnd && int64(len(body)) != p.Skip+n {
			t.Fatalf("readBody accepted a body of %d bytes for %d", len(body), p.Skip+n)
		}
	})
}

func abs(x int64) int64 {
	if x < 0 {
		if x == -x { // MinInt64
			return 0
		}
		return -x
	}
	return x
}

// TestFuzzCorpus keeps the committed seed corpora in step with the seeds
// listed here: run with -update-corpus after changing them.
func TestFuzzCorpus(t *testing.T) {
	ranges := []string{
		"bytes 0-9/10", "bytes 2000-2999/5000", "bytes 5-9/*", "bytes */77", "BYTES 0-0/1",
		" bytes 1-2/3 ", "bytes 9-0/10", "bytes 0-9", "bytes x-9/10", "bytes -1-5/10",
		"bytes +1-+5/+10", "bytes=0-9/10", "bytes 0-9/10 junk", "bytes 0-9223372036854775807/*",
		"bytes 0-999999999999999998/999999999999999999", "", "bytes", "bytes */*",
	}
	type resp struct {
		raw             string
		off, n, fileLen int64
	}
	const ok206 = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\nContent-Length: 4\r\n\r\nabcd"
	responses := []resp{
		{ok206, 2, 4, 10},
		{ok206 + "extra", 2, 4, 10},
		{"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n", 2, 4, 10},
		{"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\nContent-Length: 3\r\n\r\nabc", 2, 4, 10},
		{"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 3-6/10\r\nContent-Length: 4\r\n\r\nabcd", 2, 4, 10},
		{"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/11\r\nContent-Length: 4\r\n\r\nabcd", 2, 4, 10},
		{"HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=x\r\n\r\n--x\r\n", 2, 4, 10},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 2, 4, 10},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 6000, 4, 10000},
		{"HTTP/1.1 200 OK\r\n\r\n0123456789", 6, 4, 10},
		{"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n0123456789", 0, 10, 10},
		{"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n", 0, 1, 1},
		{"HTTP/1.1 503 Service Unavailable\r\nRetry-After: Sun, 09 Sep 2001 01:46:40 GMT\r\n\r\n", 0, 1, 1},
		{"HTTP/1.1 429 Too Many Requests\r\n\r\n", 0, 1, 1},
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 1, 1},
		{"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */5\r\n\r\n", 0, 1, 1},
		{"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", 0, 1, 1},
	}
	files := map[string][]string{}
	for _, s := range ranges {
		files["FuzzContentRange"] = append(files["FuzzContentRange"], fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s))
	}
	for _, r := range responses {
		files["FuzzResponse"] = append(files["FuzzResponse"],
			fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nint64(%d)\nint64(%d)\nint64(%d)\n", r.raw, r.off, r.n, r.fileLen))
	}
	for name, seeds := range files {
		dir := filepath.Join("testdata", "fuzz", name)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for i, seed := range seeds {
			path := filepath.Join(dir, fmt.Sprintf("seed-%03d", i))
			if *updateCorpus {
				if err := os.WriteFile(path, []byte(seed), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != seed {
				t.Errorf("%s is missing or stale (run go test -run TestFuzzCorpus -update-corpus): %v", path, err)
			}
		}
	}
}
