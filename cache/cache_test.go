package cache

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	goleak.VerifyTestMain(m,
		// badger's and ristretto's package-level goroutines outlive any DB.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/dgraph-io/ristretto/v2/z.(*AllocatorPool).freeupAllocators"),
	)
}

func ihOf(n int) InfoHash {
	var ih InfoHash
	ih[0] = byte(n)
	ih[19] = byte(n >> 8)
	return ih
}

// pieceData is the deterministic content of a test piece.
func pieceData(ih InfoHash, piece, size int) []byte {
	r := rand.New(rand.NewPCG(uint64(ih[0])<<40|uint64(ih[19])<<32|uint64(piece), uint64(size)))
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func quiet(t testing.TB) func(string, ...any) {
	return func(f string, a ...any) { t.Logf(f, a...) }
}

func openT(t testing.TB, opts Options) *Cache {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = quiet(t)
	}
	c, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

func mustPut(t testing.TB, c *Cache, ih InfoHash, piece, size int) []byte {
	t.Helper()
	d := pieceData(ih, piece, size)
	if err := c.Put(ih, piece, d); err != nil {
		t.Fatalf("Put(%d): %v", piece, err)
	}
	return d
}

func readAll(t testing.TB, c *Cache, ih InfoHash, piece, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	n, err := c.ReadAt(ih, piece, b, 0)
	if err != nil || n != size {
		t.Fatalf("ReadAt(%d) = %d, %v; want %d, nil", piece, n, err, size)
	}
	return b
}

func TestPutRead(t *testing.T) {
	c := openT(t, Options{InMemory: true, Capacity: 64 << 20})
	defer c.Close()
	ih := ihOf(1)
	const size = 256 << 10
	want := mustPut(t, c, ih, 3, size)
	small := mustPut(t, c, ih, 4, 100) // a last piece below the value threshold

	if !c.Has(ih, 3) || !c.Has(ih, 4) || c.Has(ih, 5) || c.Has(ihOf(2), 3) {
		t.Fatal("Has wrong")
	}
	if got := readAll(t, c, ih, 3, size); !bytes.Equal(got, want) {
		t.Fatal("piece 3 differs")
	}
	if got := readAll(t, c, ih, 4, 100); !bytes.Equal(got, small) {
		t.Fatal("piece 4 differs")
	}
	if got := c.Pieces(ih); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("Pieces = %v", got)
	}
	if c.Size() != size+100 {
		t.Fatalf("Size = %d", c.Size())
	}

	tests := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr error
	}{
		{"head", 0, 4096, 4096, nil},
		{"middle", 12345, 5000, 5000, nil},
		{"tail exact", size - 10, 10, 10, nil},
		{"across end", size - 10, 20, 10, io.EOF},
		{"at end", size, 5, 0, io.EOF},
		{"past end", size + 7, 5, 0, io.EOF},
		{"empty buffer", 10, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, tt.n)
			n, err := c.ReadAt(ih, 3, b, tt.off)
			if n != tt.wantN || !errors.Is(err, tt.wantErr) && err != tt.wantErr {
				t.Fatalf("ReadAt(off %d, len %d) = %d, %v; want %d, %v", tt.off, tt.n, n, err, tt.wantN, tt.wantErr)
			}
			if n > 0 && !bytes.Equal(b[:n], want[tt.off:tt.off+int64(n)]) {
				t.Fatal("bytes differ")
			}
		})
	}
	if _, err := c.ReadAt(ih, 9, make([]byte, 1), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing piece: %v", err)
	}
	if _, err := c.ReadAt(ih, 3, make([]byte, 1), -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	// A second Put of a stored piece is a no-op.
	if err := c.Put(ih, 3, want); err != nil || c.Size() != size+100 {
		t.Fatalf("re-Put: %v, size %d", err, c.Size())
	}
	if err := c.Put(ih, 1, nil); err == nil {
		t.Fatal("empty piece accepted")
	}
	if err := c.Put(ih, -1, want); err == nil {
		t.Fatal("negative piece accepted")
	}
}

func TestEvictionOrder(t *testing.T) {
	const size = 64 << 10
	c := openT(t, Options{InMemory: true, Capacity: 4 * size})
	defer c.Close()
	var mu sync.Mutex
	var evicted []int
	c.OnEvict(func(ih InfoHash, piece int) {
		mu.Lock()
		evicted = append(evicted, piece)
		mu.Unlock()
		c.Has(ih, piece) // callbacks may call back into the cache
	})
	ih := ihOf(1)
	for p := 0; p < 4; p++ {
		mustPut(t, c, ih, p, size)
	}
	readAll(t, c, ih, 0, size) // 0 becomes most recent: order now 1 2 3 0
	mustPut(t, c, ih, 4, size) // evicts 1
	readAll(t, c, ih, 2, size) // order 3 0 4 2
	mustPut(t, c, ih, 5, size) // evicts 3
	mustPut(t, c, ih, 6, size) // evicts 0
	if want := []int{1, 3, 0}; !slices.Equal(evicted, want) {
		t.Fatalf("evicted %v, want %v", evicted, want)
	}
	if got := c.Pieces(ih); !slices.Equal(got, []int{2, 4, 5, 6}) {
		t.Fatalf("Pieces = %v", got)
	}
	if c.Size() != 4*size {
		t.Fatalf("Size = %d", c.Size())
	}
	// A bigger piece evicts as many as it needs.
	mustPut(t, c, ih, 7, 2*size) // evicts 4 and 2? order is 4 2 5 6 after 6's put: 4, 2
	if want := []int{1, 3, 0, 4, 2}; !slices.Equal(evicted, want) {
		t.Fatalf("evicted %v, want %v", evicted, want)
	}
}

func TestPinning(t *testing.T) {
	const size = 64 << 10
	c := openT(t, Options{InMemory: true, Capacity: 3 * size})
	defer c.Close()
	var evicted []int
	c.OnEvict(func(_ InfoHash, piece int) { evicted = append(evicted, piece) })
	ih := ihOf(1)
	c.Pin(ih, 0) // pinned before it exists
	c.Pin(ih, 0) // twice
	for p := 0; p < 3; p++ {
		mustPut(t, c, ih, p, size)
	}
	c.Pin(ih, 1)
	mustPut(t, c, ih, 3, size) // 0 and 1 pinned: evicts 2
	if !slices.Equal(evicted, []int{2}) {
		t.Fatalf("evicted %v", evicted)
	}
	// Only pinned pieces left besides 3; 3 goes, then nothing.
	mustPut(t, c, ih, 4, size)
	err := c.Put(ih, 5, pieceData(ih, 5, 2*size))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Put with everything pinned: %v, want ErrFull", err)
	}
	t.Logf("full: %v", err)
	if !c.Has(ih, 4) || c.Has(ih, 5) {
		t.Fatal("failed Put evicted or stored something")
	}
	c.Unpin(ih, 0)
	mustPut(t, c, ih, 6, size) // 0 still pinned once: evicts 4
	c.Unpin(ih, 0)
	c.Unpin(ih, 0)             // extra Unpin ignored
	mustPut(t, c, ih, 7, size) // now 0 (most recent on unpin) vs 6: 6 older
	if want := []int{2, 3, 4, 6}; !slices.Equal(evicted, want) {
		t.Fatalf("evicted %v, want %v", evicted, want)
	}
	if got := c.Pieces(ih); !slices.Equal(got, []int{0, 1, 7}) {
		t.Fatalf("Pieces = %v", got)
	}
	if err := c.Put(ih, 8, pieceData(ih, 8, 4*size)); !errors.Is(err, ErrFull) {
		t.Fatalf("piece larger than capacity: %v", err)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	const size = 128 << 10
	c := openT(t, Options{Dir: dir, Capacity: 8 * size})
	a, b := ihOf(1), ihOf(2)
	for p := 0; p < 5; p++ {
		mustPut(t, c, a, p, size)
	}
	mustPut(t, c, b, 0, 1000)
	if err := c.PutMeta(b, []byte("d4:infod4:name1:xee")); err != nil {
		t.Fatal(err)
	}
	if err := c.PutMeta(ihOf(3), []byte("meta only")); err != nil {
		t.Fatal(err)
	}
	readAll(t, c, a, 0, size) // recency: 0 is newest; flushed at Close
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c.Has(a, 0) {
		t.Fatal("Has after Close")
	}
	if err := c.Put(a, 9, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}

	c = openT(t, Options{Dir: dir, Capacity: 8 * size})
	defer c.Close()
	if got := c.Pieces(a); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("Pieces after restart = %v", got)
	}
	for p := 0; p < 5; p++ {
		if !bytes.Equal(readAll(t, c, a, p, size), pieceData(a, p, size)) {
			t.Fatalf("piece %d differs after restart", p)
		}
	}
	if !bytes.Equal(readAll(t, c, b, 0, 1000), pieceData(b, 0, 1000)) {
		t.Fatal("small piece differs")
	}
	if m, err := c.Meta(b); err != nil || string(m) != "d4:infod4:name1:xee" {
		t.Fatalf("Meta = %q, %v", m, err)
	}
	if _, err := c.Meta(ihOf(9)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Meta of unknown: %v", err)
	}
	if got := c.Torrents(); !slices.Equal(got, []InfoHash{a, b, ihOf(3)}) {
		t.Fatalf("Torrents = %x", got)
	}
	u := c.Usage()
	if len(u) != 3 || u[0] != (Usage{a, 5, 5 * size}) || u[1] != (Usage{b, 1, 1000}) || u[2] != (Usage{ihOf(3), 0, 0}) {
		t.Fatalf("Usage = %+v", u)
	}
	if c.Size() != 5*size+1000 {
		t.Fatalf("Size = %d", c.Size())
	}

	if err := c.DropTorrent(a); err != nil {
		t.Fatal(err)
	}
	if c.Has(a, 1) || len(c.Pieces(a)) != 0 || c.Size() != 1000 {
		t.Fatalf("after DropTorrent: size %d", c.Size())
	}
	if err := c.DropTorrent(b); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Meta(b); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Meta after drop: %v", err)
	}
	if got := c.Torrents(); !slices.Equal(got, []InfoHash{ihOf(3)}) {
		t.Fatalf("Torrents after drops = %x", got)
	}
}

// TestRestartKeepsRecency checks that reads made before a clean Close order
// eviction after the restart.
func TestRestartKeepsRecency(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	ih := ihOf(1)
	c := openT(t, Options{Dir: dir, Capacity: 4 * size})
	for p := 0; p < 4; p++ {
		mustPut(t, c, ih, p, size)
	}
	readAll(t, c, ih, 0, size)
	readAll(t, c, ih, 1, size) // LRU order now 2 3 0 1
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, Options{Dir: dir, Capacity: 4 * size})
	defer c.Close()
	var evicted []int
	c.OnEvict(func(_ InfoHash, p int) { evicted = append(evicted, p) })
	mustPut(t, c, ih, 4, size)
	mustPut(t, c, ih, 5, size)
	mustPut(t, c, ih, 6, size)
	if want := []int{2, 3, 0}; !slices.Equal(evicted, want) {
		t.Fatalf("evicted %v, want %v", evicted, want)
	}
}

// TestShrinkOnNextPut reopens with a smaller capacity: nothing goes until the
// next Put, which evicts the oldest pieces down to the new limit.
func TestShrinkOnNextPut(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	ih := ihOf(1)
	c := openT(t, Options{Dir: dir, Capacity: 8 * size})
	for p := 0; p < 8; p++ {
		mustPut(t, c, ih, p, size)
	}
	c.Close()
	c = openT(t, Options{Dir: dir, Capacity: 3 * size})
	defer c.Close()
	if got := c.Pieces(ih); len(got) != 8 || c.Size() != 8*size {
		t.Fatalf("Open evicted: Pieces = %v", got)
	}
	mustPut(t, c, ih, 8, size)
	if got := c.Pieces(ih); !slices.Equal(got, []int{6, 7, 8}) {
		t.Fatalf("Pieces = %v", got)
	}
}

func TestSecondOpenLocked(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, Options{Dir: dir})
	defer c.Close()
	_, err := Open(Options{Dir: dir, Logf: quiet(t)})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "in use by another swarmfs process") {
		t.Fatalf("second Open: %v", err)
	}
	t.Logf("second open: %v", err)
}

func TestUnwritableDir(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(base, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, dir string }{
		{"under a file", filepath.Join(file, "cache")},
	}
	if os.Geteuid() != 0 { // root writes through mode bits
		cases = append(cases, struct{ name, dir string }{"read-only dir", ro})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(Options{Dir: tt.dir, Logf: quiet(t)})
			if err == nil || !strings.Contains(err.Error(), tt.dir) {
				t.Fatalf("Open(%s) = %v; want an error naming the directory", tt.dir, err)
			}
			t.Logf("%v", err)
		})
	}
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "20GiB", want: 20 << 30},
		{in: "20gib", want: 20 << 30},
		{in: "1.5GB", want: 1500000000},
		{in: "1.5GiB", want: 3 << 29},
		{in: "100M", want: 100 << 20},
		{in: "100MB", want: 100e6},
		{in: "2T", want: 2 << 40},
		{in: "4k", want: 4096},
		{in: "10 GiB", want: 10 << 30},
		{in: " 7B ", want: 7},
		{in: "0.5KiB", want: 512},
		{in: "", bad: true},
		{in: "GiB", bad: true},
		{in: "-1GiB", bad: true},
		{in: "12XB", bad: true},
		{in: "1.2.3MB", bad: true},
		{in: "99999999999999999999", bad: true},
		{in: "9000000000TiB", bad: true},
		{in: "1e9", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "512MiB") {
					t.Fatalf("error does not show an example: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}
