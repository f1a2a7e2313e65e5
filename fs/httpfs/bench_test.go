package httpfs

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkServeCached is a whole 64 MiB file served over loopback HTTP
// from a torrent that has every piece: the cost of the front-end itself
// (the cached re-read figure of issue 13), without the engine.
func BenchmarkServeCached(b *testing.B) {
	const size = 64 << 20
	ft := newFakeTorrent("bench", 1<<20, fakeFile{path: "big.bin", data: randomBytes(4, size)})
	ts := start(b, newFakeHost(ft), Options{Logf: b.Logf})
	u := fileURLOf(ts, "bench", "big.bin")
	// The client reads in large buffers, as a player or curl does, so
	// that the figure is the server's.
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	for b.Loop() {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		var n int
		for err == nil {
			var m int
			m, err = resp.Body.Read(buf)
			n += m
		}
		resp.Body.Close()
		if err != io.EOF || n != size {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}

// firstRequestEnv makes this test binary a child of BenchmarkFirstRequest
// (see TestMain).
const firstRequestEnv = "HTTPFS_FIRST_REQUEST_CHILD"

// BenchmarkFirstRequest is the first file request a fresh process serves
// ("swarmfs serve" just started, a player opening a URL): the time to the
// first byte of a 64 KiB range of a cached file over a new loopback
// connection, without the engine. Each iteration runs this test binary
// anew (firstRequestChild), so one-time costs are counted each time.
func BenchmarkFirstRequest(b *testing.B) {
	var ms []float64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), firstRequestEnv+"=1")
		out, err := cmd.CombinedOutput()
		var ns int64
		if _, serr := fmt.Sscanf(string(out), "first byte after %d ns", &ns); err != nil || serr != nil {
			b.Fatalf("child: %v %v: %s", err, serr, out)
		}
		ms = append(ms, float64(ns)/1e6)
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], "first-byte-ms")
}

// firstRequestChild serves a cached 4 MiB file and prints how long the
// first request for 64 KiB of it took to its first byte.
func firstRequestChild() error {
	ft := newFakeTorrent("first", 1<<20, fakeFile{path: "big.bin", data: randomBytes(5, 4<<20)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := NewHTTPServer("", New(newFakeHost(ft), Options{Logf: func(string, ...any) {}}))
	go hs.Serve(ln)
	defer hs.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/files/first/big.bin", nil)
	req.Header.Set("Range", "bytes=2097152-2162687")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err != nil {
		return err
	}
	fmt.Printf("first byte after %d ns\n", time.Since(t0).Nanoseconds())
	return nil
}
