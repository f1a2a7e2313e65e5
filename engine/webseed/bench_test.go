package webseed

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// The benchmarks compare Fetch with a plain GET of the same file copied to
// io.Discard, both from a local net/http server (ServeContent over a
// bytes.Reader) through the same client: the difference is what Fetch's
// checks, range requests and copying into the caller's buffer cost.
//
//	go test -run '^$' -bench . -benchtime 40x ./engine/webseed/

const benchPiece = 1 << 20

func benchTorrent(b *testing.B) (*torrent, *server, *http.Client) {
	tt := makeTorrent(b, "bench.bin", benchPiece, true, tfile{size: 64 << 20})
	srv := newServer(b, tt)
	client := NewClient(ClientConfig{})
	b.Cleanup(client.CloseIdleConnections)
	return tt, srv, client
}

// BenchmarkFetch fetches the file as runs of run pieces, one Fetch each.
func BenchmarkFetch(b *testing.B) {
	for _, run := range []int{1, 8, 64} {
		b.Run(map[int]string{1: "piece", 8: "8pieces", 64: "wholefile"}[run], func(b *testing.B) {
			tt, srv, client := benchTorrent(b)
			s := newSeed(b, srv.URL+"/", tt.layout(b), Config{Client: client})
			buf := make([]byte, run*benchPiece)
			n := tt.info.NumPieces()
			b.SetBytes(int64(len(buf)))
			for i := 0; b.Loop(); i++ {
				first := (i * run) % n
				if err := s.Fetch(context.Background(), first, run, buf, nil); err != nil {
					b.Fatal(err)
				}
			}
			st := s.Stats()
			b.ReportMetric(st.Rate/1e6, "ewma-MB/s")
			b.ReportMetric(float64(st.TTFB.Microseconds()), "ttfb-us")
		})
	}
}

// BenchmarkGetCopy is the baseline: GET the whole file and io.Copy it to
// io.Discard.
func BenchmarkGetCopy(b *testing.B) {
	tt, srv, client := benchTorrent(b)
	b.SetBytes(int64(len(tt.data)))
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/bench.bin")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(tt.data)) {
			b.Fatalf("copied %d bytes: %v", n, err)
		}
	}
}

// BenchmarkGetReadFull is the best a GET can do here: the whole file read
// with io.ReadFull into one buffer, as Fetch reads (io.Copy goes through an
// 8 KiB buffer).
func BenchmarkGetReadFull(b *testing.B) {
	tt, srv, client := benchTorrent(b)
	buf := make([]byte, len(tt.data))
	b.SetBytes(int64(len(tt.data)))
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/bench.bin")
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}
