package engine

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// logCounter is a client's Logf that also counts lines containing words.
type logCounter struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logCounter) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	l.t.Log(s)
}

func (l *logCounter) count(word string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, word) {
			n++
		}
	}
	return n
}

// clientLogging is newClient with the client's log lines counted.
func clientLogging(t *testing.T, cfg Config) (*Client, *logCounter) {
	t.Helper()
	lc := &logCounter{t: t}
	cfg.Logf = lc.logf
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, lc
}

// evictOnce is a store that loses each piece the first time it is
// written, reporting the eviction from inside WritePiece: what a cache does
// when another piece's Put evicts this one before the engine has handled
// its write.
type evictOnce struct {
	info    *metainfo.Info
	mu      sync.Mutex // guards the fields below
	pieces  map[int][]byte
	written map[int]bool
	fn      func(int)
}

func (s *evictOnce) Open(ih metainfo.Hash, info *metainfo.Info) (storage.Torrent, []int, error) {
	s.info, s.pieces, s.written = info, make(map[int][]byte), make(map[int]bool)
	return s, nil, nil
}

func (s *evictOnce) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for done := 0; done < len(p); {
		cur := off + int64(done)
		piece := int(cur / s.info.PieceLength)
		data, ok := s.pieces[piece]
		if !ok {
			return 0, fmt.Errorf("piece %d: %w", piece, storage.ErrNotStored)
		}
		done += copy(p[done:], data[cur-s.info.PieceOffset(piece):])
	}
	return len(p), nil
}

func (s *evictOnce) WritePiece(i int, data []byte) error {
	s.mu.Lock()
	first := !s.written[i]
	s.written[i] = true
	if !first {
		s.pieces[i] = bytes.Clone(data)
	}
	fn := s.fn
	s.mu.Unlock()
	if first && fn != nil {
		fn(i)
	}
	return nil
}

func (s *evictOnce) OnEvict(fn func(int)) {
	s.mu.Lock()
	s.fn = fn
	s.mu.Unlock()
}

func (s *evictOnce) Has(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pieces[i]
	return ok
}

func (s *evictOnce) Close() error { return nil }

// TestEvictedBeforeHashed: every piece is evicted once, during its own
// write, so the eviction reaches the engine before the piece's hash result.
// The engine marked such a piece had for ever (the picker ignored the
// loss of a piece it did not have yet), and reads of it spun without end.
// Each read must end with the right bytes: the piece is fetched again.
func TestEvictedBeforeHashed(t *testing.T) {
	const pieceLen = 64 << 10
	files := []swarmtest.FileSpec{{Path: "f.bin", Size: 1 << 20}}
	f := newFixture(t, pieceLen, files)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: &evictOnce{}})
	tor, r := addReader(t, c, f.mi, TorrentOptions{Peers: peersOf(sc)}, 0, false)
	w := newReadWatch(1, 20*time.Second)
	finished := make(chan struct{})
	var rerr error
	go func() {
		defer close(finished)
		buf := make([]byte, 100<<10)
		for off := int64(0); off < files[0].Size && rerr == nil; off += int64(len(buf)) {
			rerr = w.read(0, func(ctx context.Context) error {
				n, err := r.ReadAt(ctx, buf, off)
				if err != nil && n < int(min(int64(len(buf)), files[0].Size-off)) {
					return fmt.Errorf("read at %d: %w", off, err)
				}
				want := make([]byte, n)
				files[0].ReadAt(want, off)
				if !bytes.Equal(buf[:n], want) {
					return fmt.Errorf("read at %d: wrong bytes", off)
				}
				return nil
			})
		}
	}()
	w.wait(t, finished, 5*time.Second, func() string {
		s := tor.Stats()
		return fmt.Sprintf("%d of %d pieces had", s.PiecesHave, s.Pieces)
	})
	if rerr != nil {
		t.Fatal(rerr)
	}
}

// settle waits until the torrent's download stops growing for quiet, or
// until max; it returns the bytes downloaded.
func settle(tor *Torrent, quiet, max time.Duration) int64 {
	deadline := time.Now().Add(max)
	last, since := tor.Stats().Downloaded, time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if d := tor.Stats().Downloaded; d != last {
			last, since = d, time.Now()
		} else if time.Since(since) >= quiet {
			break
		}
	}
	return last
}

// TestDownloadAllSmallCache: DownloadAll of a torrent eight times the size
// of the cache fetches about what the cache holds, says so once, and stops;
// it fetched the pieces the cache evicted again and again, for ever (749 MB
// in 8 s for a 64 MiB torrent and a 16 MiB cache). Readers are still served.
func TestDownloadAllSmallCache(t *testing.T) {
	const pieceLen = 256 << 10
	files := []swarmtest.FileSpec{{Path: "big.bin", Size: 16 << 20}}
	f := newFixture(t, pieceLen, files)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	ca, err := cache.Open(cache.Options{InMemory: true, Capacity: 2 << 20, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	c, logs := clientLogging(t, Config{ListenAddr: "127.0.0.3:0", Storage: storage.NewCache(ca), MaxWindowBytes: 512 << 10})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: peersOf(sc)})
	if err != nil {
		t.Fatal(err)
	}
	got := settle(tor, 3*time.Second, 30*time.Second)
	s := tor.Stats()
	t.Logf("downloaded %d bytes of a %d byte torrent into a %d byte cache; %d pieces had; paused %v",
		got, files[0].Size, ca.Capacity(), s.PiecesHave, s.BackgroundPaused)
	if got > files[0].Size {
		t.Fatalf("downloaded %d bytes for a %d byte torrent and a %d byte cache", got, files[0].Size, ca.Capacity())
	}
	if !s.BackgroundPaused {
		t.Error("Stats does not say the background download is paused")
	}
	if n := logs.count("paused"); n != 1 {
		t.Errorf("%d log lines about the pause, want 1", n)
	}

	// A reader still gets a piece the cache does not hold.
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	off := int64(-1)
	for p := f.mi.Info.NumPieces() - 1; p >= 0; p-- {
		if !tor.HavePiece(p) {
			off = int64(p) * pieceLen
			break
		}
	}
	buf, want := make([]byte, 1000), make([]byte, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.ReadAt(ctx, buf, off); err != nil {
		t.Fatalf("read at %d with the background paused: %v", off, err)
	}
	files[0].ReadAt(want, off)
	if !bytes.Equal(buf, want) {
		t.Fatalf("read at %d: wrong bytes", off)
	}
}

// TestPiecesLargerThanTheCache: a torrent whose pieces the cache could never
// hold is refused when added, with an error that reads as ENOSPC. It was
// accepted, and its pieces fetched and refused for ever.
func TestPiecesLargerThanTheCache(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int64
		pieceLen int64
	}{
		{"two pieces larger than the cache", 1 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := cache.Open(cache.Options{InMemory: true, Capacity: tc.capacity, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			defer ca.Close()
			c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: storage.NewCache(ca)})
			const n = 4
			info := &metainfo.Info{
				Name:        "huge",
				PieceLength: tc.pieceLen,
				Pieces:      make([]byte, n*sha1.Size),
				Files:       []metainfo.File{{Path: []string{"huge"}, Length: n * tc.pieceLen}},
				TotalLength: n * tc.pieceLen,
				SingleFile:  true,
			}
			mi := &metainfo.MetaInfo{Info: info, InfoHash: metainfo.Hash{0x42}}
			tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true})
			if err == nil {
				t.Fatalf("added a torrent of %d byte pieces to a cache taking %d: %v", tc.pieceLen, ca.MaxPiece(), tor.Stats())
			}
			var errno syscall.Errno
			if !errors.Is(err, ErrNoSpace) || !errors.As(err, &errno) || errno != syscall.ENOSPC {
				t.Fatalf("AddTorrent: %v (errno %v)", err, errno)
			}
			if _, ok := c.Torrent(mi.InfoHash); ok {
				t.Fatal("the refused torrent was kept")
			}
			t.Log(err)
		})
	}
}

// TestFullDiskWhileStreaming: the disk under the cache fills up while a
// file streams. Reads of pieces that can no longer be stored fail at once
// with ENOSPC, the bytes fetched stay within a small multiple of the
// torrent, the log says it once, Stats says why; once space frees, reads
// work again. The same pieces were fetched in a loop (6.5 GB for a 128 MiB
// torrent in 11 s) and each read waited for its deadline.
func TestFullDiskWhileStreaming(t *testing.T) {
	const pieceLen = 256 << 10
	mnt := swarmtest.MountTmpfs(t, 256<<20)
	files := []swarmtest.FileSpec{{Path: "movie.mkv", Size: 24 << 20}}
	f := newFixture(t, pieceLen, files)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	// Larger than the disk, as a default cache size often is.
	ca, err := cache.Open(cache.Options{Dir: filepath.Join(mnt, "cache"), Capacity: 1 << 30, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	c, logs := clientLogging(t, Config{ListenAddr: "127.0.0.3:0", Storage: storage.NewCache(ca), MaxWindowBytes: 4 << 20})
	tor, r := addReader(t, c, f.mi, TorrentOptions{Peers: peersOf(sc)}, 0, true)

	const chunk = 128 << 10
	buf, want := make([]byte, chunk), make([]byte, chunk)
	read := func(off int64, bound time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			return err
		}
		files[0].ReadAt(want, off)
		if !bytes.Equal(buf, want) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
		return nil
	}
	var ok, nospace int
	var firstFailed int64 = -1
	for off := int64(0); off < files[0].Size; off += chunk {
		if off == 4<<20 {
			// Something else fills the disk: the cache's reserve is
			// gone from here on.
			swarmtest.FillDisk(t, mnt, 64<<20)
			// The cache looks at the free space at most once a second.
			time.Sleep(1100 * time.Millisecond)
		}
		if off == 4<<20+chunk {
			// The read at 4 MiB moved the readahead onto a piece that
			// can no longer be stored: let it be refused before the
			// reader gets there. A reader already waiting for a piece
			// gets its bytes before the store refuses them, so a reader
			// that outran the readahead would never see a refusal.
			for end := time.Now().Add(10 * time.Second); tor.Stats().Refused == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatal("no piece ahead of the reader was refused within 10 s of the disk filling")
				}
			}
		}
		switch err := read(off, 10*time.Second); {
		case err == nil:
			ok++
		case errors.Is(err, ErrNoSpace):
			var errno syscall.Errno
			if !errors.As(err, &errno) || errno != syscall.ENOSPC {
				t.Fatalf("read at %d: %v does not read as ENOSPC", off, err)
			}
			if firstFailed < 0 {
				firstFailed = off
				t.Logf("first refusal at %d: %v", off, err)
			}
			nospace++
		default:
			s := tor.Stats()
			t.Fatalf("read at %d: %v (downloaded %d, store error %q)", off, err, s.Downloaded, s.StoreError)
		}
	}
	got := settle(tor, 2*time.Second, 20*time.Second)
	s := tor.Stats()
	t.Logf("%d reads returned data, %d ENOSPC; downloaded %d bytes for a %d byte torrent; %d pieces refused; store error %q",
		ok, nospace, got, files[0].Size, s.Refused, s.StoreError)
	if nospace == 0 {
		t.Fatal("no read failed with ENOSPC after the disk was full")
	}
	if got > 2*files[0].Size {
		t.Errorf("downloaded %d bytes for a %d byte torrent", got, files[0].Size)
	}
	if s.Refused == 0 || !strings.Contains(s.StoreError, "disk") {
		t.Errorf("Stats: %d refused, store error %q", s.Refused, s.StoreError)
	}
	if n := logs.count("cannot store"); n < 1 || n > 2 {
		t.Errorf("%d log lines about refused pieces", n)
	}

	// Space frees: a piece refused before is fetched, stored and read.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	// Refused pieces are retried within a second or two of the store
	// having room: until then a read still fails at once.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := read(firstFailed, 30*time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNoSpace) || time.Now().After(deadline) {
			t.Fatalf("read at %d once space was back: %v", firstFailed, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Readers get a verified piece while the store writes it: the
	// have-bit follows once the write is done.
	for end := time.Now().Add(10 * time.Second); !tor.HavePiece(int(firstFailed / pieceLen)); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the piece read once space was back is not stored")
		}
	}
}
