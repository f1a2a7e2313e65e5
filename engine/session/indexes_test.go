package session

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// prefetchReader is a Reader with AwaitHeadTail that tells its opener when
// it is waited on and closed; await returns what it is given to return.
type prefetchReader struct {
	file   int
	await  func(ctx context.Context) error
	closed chan struct{}
}

func (r *prefetchReader) ReadAt(context.Context, []byte, int64) (int, error) {
	return 0, fmt.Errorf("prefetch must not read (file %d)", r.file)
}
func (r *prefetchReader) AwaitHeadTail(ctx context.Context) error { return r.await(ctx) }
func (r *prefetchReader) Close() error {
	close(r.closed)
	return nil
}

// openLog records the readers a session opened, in order.
type openLog struct {
	mu      sync.Mutex
	opened  []string // "FILE media" or "FILE plain"
	readers []*prefetchReader
}

func (l *openLog) newReader(await func(file int, ctx context.Context) error) func(int, bool) (Reader, error) {
	return func(file int, media bool) (Reader, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		kind := "plain"
		if media {
			kind = "media"
		}
		l.opened = append(l.opened, fmt.Sprintf("%d %s", file, kind))
		r := &prefetchReader{file: file, closed: make(chan struct{}), await: func(ctx context.Context) error { return await(file, ctx) }}
		l.readers = append(l.readers, r)
		return r, nil
	}
}

func (l *openLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.opened)
}

// mediaTorrent makes a torrent of 1 MiB pieces whose files are 3 MiB each
// (so each has a head and a tail piece of its own), in this order.
func mediaTorrent(t *testing.T, names ...string) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "show")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(strings.Repeat(string(rune('a'+i)), 3<<20)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mi, err := metainfo.Create(dir, metainfo.CreateOptions{NoDate: true, PieceLength: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range mi.Info.Files {
		if f.DisplayPath() != names[i] {
			t.Fatalf("file %d is %s, want %s: name them in the order Create sorts them", i, f.DisplayPath(), names[i])
		}
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isVideo(p string) bool { return path.Ext(p) == ".mkv" || path.Ext(p) == ".mp4" }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPrefetchIndexes: once a torrent is added, its media files are opened
// as media readers one at a time, in the torrent's order, each waited on
// (never read) and closed, until the budget is spent; other files, and
// files already complete (which cost nothing), are left alone.
func TestPrefetchIndexes(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	var l openLog
	release := make(chan struct{})
	e.newReader = l.newReader(func(file int, ctx context.Context) error {
		if file == 0 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	e.fileDone = func(file int) int64 {
		if file == 2 {
			return 3 << 20 // b.mp4 is cached whole
		}
		return 0
	}
	s, err := New(Config{Engine: e, Store: st, Logf: t.Logf, IndexFile: isVideo, IndexBudget: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Each video costs 2 MiB of pieces, but b, complete, costs nothing: a
	// and c fit in 4 MiB, d does not.
	b := mediaTorrent(t, "a.mkv", "a.txt", "b.mp4", "c.mp4", "d.mp4")
	if _, err := s.Add(b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first media file opened", func() bool { return len(l.list()) == 1 })
	time.Sleep(20 * time.Millisecond)
	if got := l.list(); !slices.Equal(got, []string{"0 media"}) {
		t.Fatalf("while the first file's head and tail are awaited, opened %v; want only file 0", got)
	}
	close(release)
	waitFor(t, "file 3 opened", func() bool { return len(l.list()) == 2 })
	for _, r := range l.readers {
		<-r.closed
	}
	time.Sleep(20 * time.Millisecond)
	if got := l.list(); !slices.Equal(got, []string{"0 media", "3 media"}) {
		t.Errorf("opened %v; want files 0 and 3 as media (1 is not media, 2 is complete, 4 is over the budget)", got)
	}
}

// TestPrefetchIndexesStops: a reader the picker grants no head and tail
// (engine.ErrNoHeadTail) ends the prefetch, as does an error (no source
// for the pieces); a torrent removed while its file is awaited cancels the
// wait and closes the reader; a budget of 0 or no IndexFile opens nothing.
func TestPrefetchIndexesStops(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		remove bool
	}{
		{"not granted", engine.ErrNoHeadTail, false},
		{"failed", context.DeadlineExceeded, false},
		{"removed", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, st := newFakeEngine(), newFakeStore()
			var l openLog
			e.newReader = l.newReader(func(file int, ctx context.Context) error {
				if tc.remove {
					<-ctx.Done()
					return ctx.Err()
				}
				return tc.err
			})
			s, err := New(Config{Engine: e, Store: st, Logf: t.Logf, IndexFile: isVideo, IndexBudget: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tor, err := s.Add(mediaTorrent(t, "a.mkv", "b.mkv"))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the first media file opened", func() bool { return len(l.list()) == 1 })
			if tc.remove {
				if err := s.Remove(tor.InfoHash()); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-l.readers[0].closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the reader was not closed")
			}
			time.Sleep(20 * time.Millisecond)
			if got := l.list(); len(got) != 1 {
				t.Errorf("opened %v; want the first file only", got)
			}
		})
	}
	for _, cfg := range []Config{{IndexFile: isVideo}, {IndexBudget: 1 << 30}} {
		e, st := newFakeEngine(), newFakeStore()
		var l openLog
		e.newReader = l.newReader(func(int, context.Context) error { return nil })
		cfg.Engine, cfg.Store, cfg.Logf = e, st, t.Logf
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(mediaTorrent(t, "a.mkv")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(indexDelay + 50*time.Millisecond)
		s.Close()
		if got := l.list(); len(got) != 0 {
			t.Errorf("budget %d, IndexFile set %v: opened %v, want nothing", cfg.IndexBudget, cfg.IndexFile != nil, got)
		}
	}
}

// TestPrefetchIndexesMagnet: a magnet's files are prefetched once its
// metadata arrives.
func TestPrefetchIndexesMagnet(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	var l openLog
	e.newReader = l.newReader(func(int, context.Context) error { return nil })
	s, err := New(Config{Engine: e, Store: st, Logf: t.Logf, IndexFile: isVideo, IndexBudget: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mi, err := metainfo.Parse(mediaTorrent(t, "a.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add([]byte("magnet:?xt=urn:btih:" + mi.InfoHash.String())); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := l.list(); len(got) != 0 {
		t.Fatalf("opened %v before the metadata came", got)
	}
	e.handle(mi.InfoHash).setInfo(mi)
	waitFor(t, "the media file opened", func() bool { return len(l.list()) == 1 })
}

// TestIndexCost: a file's head and tail cost the pieces under them.
func TestIndexCost(t *testing.T) {
	const mib = 1 << 20
	info := &metainfo.Info{PieceLength: mib}
	for _, tc := range []struct {
		off, size, want int64
	}{
		{0, 0, 0},
		{0, 100, mib},
		{mib - 10, 20, 2 * mib},  // across a boundary
		{0, 2 * mib, 2 * mib},    // whole: at most twice the span
		{10, 2 * mib, 3 * mib},   // whole, unaligned
		{0, 100 * mib, 2 * mib},  // head and tail
		{10, 100 * mib, 4 * mib}, // each across a boundary
	} {
		got := indexCost(info, metainfo.File{Offset: tc.off, Length: tc.size})
		if got != tc.want {
			t.Errorf("file at %d of %d bytes: cost %d, want %d", tc.off, tc.size, got, tc.want)
		}
	}
}
